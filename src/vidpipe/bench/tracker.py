"""`vidpipe bench --suite tracker`: tracker throughput against supervision's ByteTrack on the
same detections in the same run, and (with a clip) how the two trackers agree on real footage.

Throughput: S streams x N objects per frame, boxes moving with noise; vidpipe tracks all
streams' frames of one time step in one batched update (as in a pipeline after streammux);
supervision runs one ByteTrack per stream. Pinned to one CPU core. Outputs are checked too
(untimed): vidpipe must give ids to as many of the last frame's objects as supervision, and no
more than 5% more distinct ids (the scene has no occlusion: one id per object).
"""
from __future__ import annotations

import os
import time
from collections import Counter, defaultdict

import numpy as np

from ..track import TrackerCore, make_params


def _scene(streams: int, objects: int, frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1800, (streams, objects, 2))
    vel = rng.uniform(-4, 4, (streams, objects, 2))
    size = rng.uniform(30, 80, (streams, objects, 2))
    out = []
    for t in range(frames):
        p = pos + vel * t + rng.normal(0, 1.0, pos.shape)
        boxes = np.concatenate([p, p + size], axis=2)  # [S,N,4]
        scores = rng.uniform(0.3, 1.0, (streams, objects))
        out.append((boxes, scores))
    return out


def _ours(scene, streams: int, objects: int) -> float:
    core = TrackerCore(make_params("bytetrack", match_class=False))
    keys = np.arange(streams)
    detected = np.ones(streams, bool)
    d_frame = np.repeat(np.arange(streams), objects)
    cls = np.zeros(streams * objects, np.int64)
    t0 = time.perf_counter()
    for n, (boxes, scores) in enumerate(scene):
        core.update(keys, np.full(streams, n), detected, d_frame, boxes.reshape(-1, 4), scores.reshape(-1), cls)
    return time.perf_counter() - t0


def _supervision(scene, streams: int, objects: int) -> float | None:
    try:
        import supervision as sv
    except ImportError:
        return None
    trackers = [sv.ByteTrack() for _ in range(streams)]
    cls = np.zeros(objects, int)
    t0 = time.perf_counter()
    for boxes, scores in scene:
        for s in range(streams):
            trackers[s].update_with_detections(sv.Detections(xyxy=boxes[s], confidence=scores[s], class_id=cls))
    return time.perf_counter() - t0


def _outputs(scene, streams: int, objects: int) -> dict:
    """What each tracker made of the scene (untimed): the share of the last frame's detections
    that carry an id, and how many distinct ids were given (streams x objects when no track
    breaks). The scene has no occlusion, so a sound tracker keeps every object under one id."""
    import supervision as sv
    core = TrackerCore(make_params("bytetrack", match_class=False))
    keys = np.arange(streams)
    d_key = np.repeat(keys, objects)
    cls = np.zeros(streams * objects, np.int64)
    ours: set = set()
    for n, (boxes, scores) in enumerate(scene):
        r = core.update(keys, np.full(streams, n), np.ones(streams, bool), d_key, boxes.reshape(-1, 4),
                        scores.reshape(-1), cls)
        ours |= set(zip(d_key[r.object_id >= 0].tolist(), r.object_id[r.object_id >= 0].tolist()))
    trackers = [sv.ByteTrack() for _ in range(streams)]
    theirs: set = set()
    for boxes, scores in scene:
        last = 0
        for k in range(streams):
            res = trackers[k].update_with_detections(sv.Detections(xyxy=boxes[k], confidence=scores[k],
                                                                   class_id=np.zeros(objects, int)))
            theirs |= {(k, int(t)) for t in res.tracker_id}
            last += len(res)
    return {"tracked_share_vidpipe": round(float((r.object_id >= 0).mean()), 3),
            "tracked_share_supervision": round(last / (streams * objects), 3),
            "ids_vidpipe": len(ours), "ids_supervision": len(theirs)}


def check(row: dict) -> str | None:
    """Why a row's outputs are not as good as supervision's on the same boxes, or None."""
    if row.get("ids_supervision") is None:
        return None
    if row["tracked_share_vidpipe"] < row["tracked_share_supervision"] - 0.02:
        return (f"{row['streams']} streams x {row['objects_per_frame']}: vidpipe tracks {row['tracked_share_vidpipe']:.1%} "
                f"of the last frame's objects, supervision {row['tracked_share_supervision']:.1%}")
    if row["ids_vidpipe"] > 1.05 * row["ids_supervision"]:
        return (f"{row['streams']} streams x {row['objects_per_frame']}: vidpipe gave {row['ids_vidpipe']} ids, "
                f"supervision {row['ids_supervision']} (broken tracks)")
    return None


def throughput(objects_list=(1, 10, 100), streams_list=(1, 16, 64), budget: int = 60_000) -> list[dict]:
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    rows = []
    for streams in streams_list:
        for objects in objects_list:
            frames = int(max(20, min(300, budget // (streams * objects))))
            scene = _scene(streams, objects, frames)
            _ours(scene[:5], streams, objects)  # warm-up
            ours = min(_ours(scene, streams, objects) for _ in range(2))
            sv_t = _supervision(scene, streams, objects)
            total = frames * streams * objects
            rows.append({"streams": streams, "objects_per_frame": objects, "frames": frames,
                         "vidpipe_obj_per_s": round(total / ours), "supervision_obj_per_s": round(total / sv_t) if sv_t else None,
                         "ratio": round(sv_t / ours, 2) if sv_t else None,
                         **(_outputs(scene[:60], streams, objects) if sv_t else {})})
    return rows


def detections_of(clip: str, frames: int | None = None, label: str = "person", threshold: float = 0.4):
    """Default-model detections of `label` per frame: list of (xyxy [K,4], scores [K])."""
    from ..assets import default_infer_config
    from ..flow import Flow
    out = []

    def probe(pad, batch):
        for f in batch.frames:
            objs = [o for o in f.objects if o.label == label]
            out.append((np.array([o.bbox.as_xyxy() for o in objs], np.float64).reshape(-1, 4),
                        np.array([o.confidence for o in objs], np.float64)))
    Flow().capture(clip, **({"num_buffers": frames} if frames else {})).infer(default_infer_config(threshold)).probe(probe).run()
    return out


def _stability(ids_per_frame: list[np.ndarray]) -> dict:
    frames_of: dict[int, list[int]] = defaultdict(list)
    for n, ids in enumerate(ids_per_frame):
        for i in ids[ids >= 0].tolist():
            frames_of[i].append(n)
    lengths = [len(v) for v in frames_of.values()]
    gaps = sum(int(np.sum(np.diff(v) > 1)) for v in frames_of.values())
    return {"tracks": len(frames_of), "mean_track_length": round(float(np.mean(lengths)), 1) if lengths else 0.0,
            "fragmentations": gaps}


def agreement(dets, fps: float = 10.0) -> dict:
    """Our ByteTrack and supervision's on the same detections: stability, and the share of
    detections (tracked by both) whose ids map one-to-one between the two."""
    import supervision as sv
    ours_core = TrackerCore(make_params("bytetrack", match_class=False))
    theirs = sv.ByteTrack(frame_rate=int(round(fps)))
    ours_ids, their_ids = [], []
    for n, (boxes, scores) in enumerate(dets):
        k = len(boxes)
        r = ours_core.update(np.array([0]), np.array([n]), np.array([True]), np.zeros(k, np.int64), boxes, scores,
                             np.zeros(k, np.int64))
        ours_ids.append(r.object_id.copy())
        tid = np.full(k, -1, np.int64)
        if k:
            d = sv.Detections(xyxy=boxes.astype(np.float32), confidence=scores.astype(np.float32),
                              class_id=np.zeros(k, int), data={"idx": np.arange(k)})
            res = theirs.update_with_detections(d)
            if len(res):
                tid[res.data["idx"]] = res.tracker_id
        else:
            theirs.update_with_detections(sv.Detections.empty())
        their_ids.append(tid)
    pairs = Counter()
    for a, b in zip(ours_ids, their_ids):
        both = (a >= 0) & (b >= 0)
        pairs.update(zip(a[both].tolist(), b[both].tolist()))
    best_a = {}
    best_b = {}
    for (a, b), c in pairs.most_common():
        best_a.setdefault(a, b)
        best_b.setdefault(b, a)
    both_total = sum(pairs.values())
    agree = sum(c for (a, b), c in pairs.items() if best_a[a] == b and best_b[b] == a)
    return {"detections": int(sum(len(d[0]) for d in dets)),
            "tracked_by_both": both_total,
            "one_to_one_share": round(agree / both_total, 3) if both_total else None,
            "vidpipe": _stability(ours_ids), "supervision": _stability(their_ids)}
