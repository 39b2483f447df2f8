"""`vidpipe bench --suite analytics`: the analytics element's work against supervision's zones doing
the same work on the same tracks, in the same run.

S streams x N tracked objects per frame walk smoothly (no jitter, so every way of counting agrees);
each stream has 4 ROIs and 4 lines crossing the whole frame (their ends never matter). vidpipe: one
AnalyticsEngine.process per batch of S frames (what the element does), lines in loose mode with
count-every-crossing=1. supervision: per stream 4 PolygonZone and 4 LineZone, triggered per frame.
Inputs are built before the timing on both sides (vidpipe's batches, supervision's Detections).
Outputs are compared: for every object on every frame, which ROIs it is in, and the crossings per
line; the run fails (exit 1) when they differ. supervision decides ROIs on a pixel mask (anchors
rounded to whole pixels, edges included), so objects whose anchor is within 1.5 px of a ROI's edge
are left out of that comparison (their number is printed); see sv_polygon for the zones' shape.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

W, H = 1920, 1080
ROIS = [[(100, 100), (900, 100), (900, 500), (100, 500)],
        [(1000, 100), (1800, 150), (1700, 520), (1050, 480)],
        [(100, 600), (600, 560), (800, 1000), (150, 1020), (50, 800)],
        [(900, 600), (1850, 600), (1850, 1050), (900, 1050)]]
LINES = [((-100.25, 300.25), (2100.25, 330.25)), ((-100.25, 700.25), (2100.25, 650.25)),
         ((600.25, -100.25), (640.25, 1200.25)), ((1300.25, -100.25), (1250.25, 1200.25))]


def config_text(streams: int) -> str:
    out = [f"[property]\nconfig-width={W}\nconfig-height={H}\nosd-mode=0\n"]
    for s in range(streams):
        out.append(f"[roi-filtering-stream-{s}]\nenable=1\n" + "".join(
            f"roi-R{j}=" + ";".join(f"{x};{y}" for x, y in r) + "\n" for j, r in enumerate(ROIS)))
        out.append(f"[line-crossing-stream-{s}]\nenable=1\nmode=loose\ncount-every-crossing=1\n" + "".join(
            f"line-crossing-L{j}={a[0]};{a[1] - 50};{a[0]};{a[1] + 50};{a[0]};{a[1]};{b[0]};{b[1]}\n"
            for j, (a, b) in enumerate(LINES)))
    return "\n".join(out)


def scene(streams: int, objects: int, frames: int, seed: int = 0) -> np.ndarray:
    """Anchors (bottom centres) [frames, streams, objects, 2]: straight walks, bouncing off the edges."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform((50, 50), (W - 50, H - 50), (streams, objects, 2))
    vel = rng.uniform(-6, 6, (streams, objects, 2)) + 0.013
    out = np.empty((frames, streams, objects, 2))
    for t in range(frames):
        out[t] = pos
        pos = pos + vel
        for k, hi in ((0, W - 20), (1, H - 20)):
            bounce = (pos[..., k] < 20) | (pos[..., k] > hi)
            vel[..., k] = np.where(bounce, -vel[..., k], vel[..., k])
            pos[..., k] = np.clip(pos[..., k], 20, hi)
    return out


def sv_polygon(r: list) -> np.ndarray:
    """The ROI as given to supervision: with a zero-width spike to the frame's far corner, so that
    PolygonZone's mask spans the frame. Without it, PolygonZone clips each box to the zone's
    bounding box before taking the anchor, and boxes reaching past the zone's right or bottom edge
    are judged at a point that is not their anchor (docs/analytics.md)."""
    return np.asarray([*r, (W - 1, H - 1), r[-1]], np.int64)


def near_edge(anchors: np.ndarray, tol: float = 1.5) -> np.ndarray:
    """[..., ROIs] anchors within tol px of a ROI's boundary (or of its spike, see sv_polygon)."""
    p = anchors[..., None, :]
    out = []
    for r in ROIS:
        a = np.asarray(sv_polygon(r), np.float64)
        b = np.roll(a, -1, 0)
        ab = b - a
        t = np.clip(((p - a) * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
        d = np.hypot(*np.moveaxis(p - (a + t[..., None] * ab), -1, 0))
        out.append(d.min(-1) < tol)
    return np.stack(out, -1)


def _boxes(anchors: np.ndarray) -> np.ndarray:
    x, y = anchors[..., 0], anchors[..., 1]
    return np.stack([x - 20, y - 60, x + 20, y], -1).astype(np.float32)


def ours(anchors: np.ndarray, cfg) -> tuple[float, np.ndarray, np.ndarray]:
    from ..analytics import AnalyticsEngine
    from ..core.meta import Batch, Frame
    frames, streams, objects, _ = anchors.shape
    image = np.zeros((H, W, 3), np.uint8)
    batches = []
    for t in range(frames):
        fs = [Frame(image, s, t, t / 30.0) for s in range(streams)]
        b = Batch(fs)
        b.objects.add(frame=np.repeat(np.arange(streams), objects).astype(np.int32),
                      xyxy=_boxes(anchors[t]).reshape(-1, 4), class_id=0, confidence=0.9,
                      object_id=np.tile(np.arange(objects), streams))
        batches.append(b)
    eng = AnalyticsEngine(cfg)
    t0 = time.perf_counter()
    for b in batches:
        eng.process(b)
    dt = time.perf_counter() - t0
    bits = np.stack([b.objects.data("analytics_roi") for b in batches]).reshape(frames, streams, objects)
    in_roi = (bits[..., None] >> np.arange(len(ROIS))) & 1 == 1
    crossings = np.stack([eng.cum[s][:len(LINES)].sum(1) for s in range(streams)])
    return dt, in_roi, crossings


def with_supervision(anchors: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    import supervision as sv
    frames, streams, objects, _ = anchors.shape
    bc = [sv.Position.BOTTOM_CENTER]
    zones = [[sv.PolygonZone(sv_polygon(r), triggering_anchors=bc) for r in ROIS] for _ in range(streams)]
    lines = [[sv.LineZone(sv.Point(*a), sv.Point(*b), triggering_anchors=bc) for a, b in LINES] for _ in range(streams)]
    dets = [[sv.Detections(xyxy=_boxes(anchors[t, s]), class_id=np.zeros(objects, int),
                           tracker_id=np.arange(objects)) for s in range(streams)] for t in range(frames)]
    in_roi = np.zeros((frames, streams, objects, len(ROIS)), bool)
    t0 = time.perf_counter()
    for t in range(frames):
        for s in range(streams):
            d = dets[t][s]
            for j, z in enumerate(zones[s]):
                in_roi[t, s, :, j] = z.trigger(d)
            for ln in lines[s]:
                ln.trigger(d)
    dt = time.perf_counter() - t0
    crossings = np.asarray([[ln.in_count + ln.out_count for ln in lines[s]] for s in range(streams)])
    return dt, in_roi, crossings


def main_analytics(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from ..analytics import load_analytics_config
    from . import finish, machine
    try:
        import supervision  # noqa: F401
    except ImportError:
        raise SystemExit("the analytics suite compares with supervision: pip install supervision") from None
    streams_list = [int(s) for s in args.streams.split(",")] if args.streams != "1,4" else [1, 16]
    objects = args.objects
    frames = args.frames
    wrong: list[str] = []
    print(f"machine: {machine()}; {objects} objects per frame, {len(ROIS)} ROIs and {len(LINES)} lines per stream, "
          f"{frames} frames")
    print(f"{'streams':>7}{'vidpipe us/obj':>16}{'supervision us/obj':>20}{'ratio':>8}{'crossings':>11}"
          f"{'in ROIs':>9}{'left out':>10}")
    for streams in streams_list:
        with tempfile.TemporaryDirectory(prefix="vidpipe-analytics-") as tmp:
            path = os.path.join(tmp, "analytics.txt")
            with open(path, "w") as fh:
                fh.write(config_text(streams))
            cfg = load_analytics_config(path)
        anchors = scene(streams, objects, frames)
        t_ours, roi_ours, cross_ours = ours(anchors, cfg)
        t_sv, roi_sv, cross_sv = with_supervision(anchors)
        per = frames * streams * objects
        near = near_edge(anchors)
        differ = (roi_ours != roi_sv) & ~near
        if differ.any():
            wrong.append(f"{streams} streams: {int(differ.sum())} object/ROI decisions differ")
        if not np.array_equal(cross_ours, cross_sv):
            wrong.append(f"{streams} streams: crossings per line differ: vidpipe {cross_ours.sum()}, "
                         f"supervision {cross_sv.sum()}")
        print(f"{streams:>7}{1e6 * t_ours / per:>16.3f}{1e6 * t_sv / per:>20.3f}{t_sv / t_ours:>8.1f}"
              f"{int(cross_ours.sum()):>11}{int(roi_ours.sum()):>9}{int(near.sum()):>10}", flush=True)
    return finish(wrong)
