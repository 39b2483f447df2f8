"""`vidpipe bench`: vidpipe against a hand-written loop doing the same work, in the same run.

The loop is what a careful user writes without a framework: PyAV decode -> resize -> the same
TFLite model (LiteRT, all cores) -> OpenCV drawing -> PyAV x264 encode, streams taken in turn.
vidpipe runs N sources -> streammux(batch N) -> infer -> osd -> encoder -> filesink.
Both use the same clip, model, threshold and encoder settings (x264 veryfast, crf 23).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from fractions import Fraction

import numpy as np


CLIPS = {"default": "bikes", "pets": "pets"}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--suite", default="e2e", choices=["e2e", "tracker", "rtsp", "streams", "analytics", "record",
                                                        "messaging", "service"],
                    help="e2e: pipeline vs hand-written loop; tracker: tracker vs supervision's ByteTrack; "
                    "rtsp: RTSP server CPU per client and latency; streams: N streams vs N independent loops; "
                    "analytics: ROIs and lines vs supervision's zones on the same tracks; record: smart record's cost and "
                    "trigger-to-file latency; messaging: rate, latency, overhead and an outage per broker; "
                    "service: console latency in Chromium, CPU per viewer, overhead of /metrics and live views")
    ap.add_argument("--clips", default="default,pets",
                    help="comma list: default (bikes.mp4), pets (../shared or the vtest asset), or file paths")
    ap.add_argument("--streams", default="1,4", help="comma list of stream counts (default 1,4)")
    ap.add_argument("--frames", type=int, default=250, help="frames per stream (default 250)")
    ap.add_argument("--objects", type=int, default=40, help="analytics suite: objects per frame (default 40)")
    ap.add_argument("--outage", type=float, default=60.0, help="messaging suite: seconds the broker is down")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each side; the best is kept (default 1; "
                    "2 with --device cuda, alternating)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda: the GPU suite (NVDEC + torch; streams "
                    "1,4,16,32,64 by default) against NVDEC alone, the model alone and a hand-written loop")
    ap.add_argument("--clip", help="--device cuda: the 1080p H.264 clip (default: made in the run with PyAV)")
    ap.add_argument("--model", help="--device cuda: NanoDet ONNX (default: ../shared/models/nanodet_m416.onnx)")
    ap.add_argument("--profile", action="store_true", help="--device cuda: also profile CUDA memory copies")
    ap.add_argument("--make-clip", metavar="PATH", help="write the GPU benchmark's 1080p clip to PATH and stop")
    ap.add_argument("--clip-source", help="--make-clip: scale this clip's frames up (default: moving squares)")
    ap.add_argument("--clip-codec", default="h264", choices=["h264", "h265"], help="--make-clip: codec")
    ap.add_argument("--clip-h265", metavar="PATH", help="--device cuda: also time NVDEC alone on this H.265 clip")
    ap.add_argument("--clip-frames", type=int, default=150, metavar="N",
                    help="--make-clip: frames in the clip (runs longer than the clip reopen it: decoder start-up "
                         "inside the timing)")


def _resolve_clip(name: str) -> str:
    from .. import assets
    if name == "default":
        return assets.default_clip()
    if name == "pets":
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for base in (os.environ.get("VIDPIPE_SHARED", ""), os.path.join(os.getcwd(), "..", "shared"),
                     os.path.join(os.getcwd(), "shared"), os.path.join(repo, "..", "shared")):
            p = os.path.join(base, "media", "pets09_s2l1_vtest.avi")
            if base and os.path.exists(p):
                return os.path.abspath(p)
        return assets.pull("vtest")  # the same file, from Debian's opencv-doc
    return name


def hand_written_loop(clip: str, streams: int, frames: int, model: str, labels: dict[int, str],
                      threshold: float, outdir: str) -> tuple[float, dict]:
    """The baseline. Returns frames per second over all streams, and the objects it drew:
    {(stream, frame): [(class, x1, y1, x2, y2), ...]}."""
    import av
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=model, num_threads=os.cpu_count() or 1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    outs = it.get_output_details()
    _, H, W, _ = inp["shape"]
    t0 = time.perf_counter()
    ins = [av.open(clip) for _ in range(streams)]
    decoders = [c.decode(video=0) for c in ins]
    for c in ins:
        c.streams.video[0].thread_type = "AUTO"
    outs_c, enc = [], []
    for s in range(streams):
        vs = ins[s].streams.video[0]
        o = av.open(os.path.join(outdir, f"loop_{s}.mp4"), "w")
        st = o.add_stream("libx264", rate=Fraction(vs.average_rate or 25).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = vs.codec_context.width - vs.codec_context.width % 2, \
            vs.codec_context.height - vs.codec_context.height % 2, "yuv420p"
        st.options = {"preset": "veryfast", "crf": "23"}
        outs_c.append(o)
        enc.append(st)
    n = 0
    found: dict = {}
    active = list(range(streams))
    count = [0] * streams
    while active:
        for s in list(active):
            frame = next(decoders[s], None)
            if frame is None or count[s] >= frames:
                active.remove(s)
                continue
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            x = cv2.resize(img, (W, H))[None]
            it.set_tensor(inp["index"], x)
            it.invoke()
            boxes = it.get_tensor(outs[0]["index"])[0]
            classes = it.get_tensor(outs[1]["index"])[0]
            scores = it.get_tensor(outs[2]["index"])[0]
            k = int(it.get_tensor(outs[3]["index"])[0])
            for i in range(k):
                if scores[i] < threshold:
                    continue
                y1, x1, y2, x2 = boxes[i]
                found.setdefault((s, count[s]), []).append((int(classes[i]), x1 * w, y1 * h, x2 * w, y2 * h))
                p1, p2 = (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h))
                cv2.rectangle(img, p1, p2, (0, 255, 0), 2)
                cv2.putText(img, f"{labels.get(int(classes[i]), '?')} {scores[i]:.2f}", (p1[0], p1[1] - 2),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
            vf = av.VideoFrame.from_ndarray(img[: enc[s].height, : enc[s].width], format="rgb24")
            for pkt in enc[s].encode(vf):
                outs_c[s].mux(pkt)
            count[s] += 1
            n += 1
    for s in range(streams):
        for pkt in enc[s].encode(None):
            outs_c[s].mux(pkt)
        outs_c[s].close()
        ins[s].close()
    return n / (time.perf_counter() - t0), found


def vidpipe_pipeline(clip: str, streams: int, frames: int, threshold: float, outdir: str) -> tuple[float, dict]:
    from .. import assets
    from ..core.perf import PerfMonitor
    from ..flow import Flow

    flow = Flow(batch_size=streams)
    flow.capture(*([clip] * streams), num_buffers=frames)
    flow.infer(config=assets.default_infer_config(threshold)).osd()
    flow.encode(os.path.join(outdir, "vp_%d.mp4"), preset="veryfast", crf=23)
    p = flow.build()
    perf = PerfMonitor(p["sink"].sink_pad)
    found: dict = {}

    def collect(pad, batch):  # columns, not views: what the bench reads must not cost much
        objs = batch.objects
        if len(objs):
            rows = np.concatenate([objs.class_id[:, None], objs.xyxy], 1).tolist()
            for k, row in zip(objs.frame.tolist(), rows):
                f = batch.frames[k]
                found.setdefault((f.source_id, f.frame_num), []).append((int(row[0]), *row[1:]))
    p["sink"].sink_pad.add_probe(collect)
    t0 = time.perf_counter()
    p.run(handle_signals=False)
    return perf.frames / (time.perf_counter() - t0), found


def matched_share(ours: dict, theirs: dict, iou: float = 0.5) -> float:
    """Share of all objects (both sides) that have a same-class counterpart with IoU >= `iou` on
    the same stream and frame: 1.0 when both found the same things."""
    def box_iou(a, b):
        ix = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        iy = max(0.0, min(a[4], b[4]) - max(a[2], b[2]))
        inter = ix * iy
        union = (a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter
        return inter / union if union > 0 else 0.0
    matched = total = 0
    for key in set(ours) | set(theirs):
        a, b = ours.get(key, []), theirs.get(key, [])
        total += len(a) + len(b)
        matched += sum(any(x[0] == y[0] and box_iou(x, y) >= iou for y in b) for x in a)
        matched += sum(any(x[0] == y[0] and box_iou(x, y) >= iou for y in a) for x in b)
    return matched / total if total else 1.0


def same_objects(name: str, ours: int, theirs: int, wrong: list[str], tolerance: float = 0.02) -> None:
    """Records a row whose object count differs from the baseline's by more than `tolerance`."""
    if abs(ours - theirs) > tolerance * max(theirs, 1):
        wrong.append(f"{name}: vidpipe found {ours} objects, the baseline {theirs}")


def same_detections(name: str, ours: dict, theirs: dict, wrong: list[str], minimum: float = 0.95) -> float:
    """Records a row where fewer than `minimum` of the objects match between the two sides."""
    share = matched_share(ours, theirs)
    if share < minimum:
        wrong.append(f"{name}: only {share:.1%} of the objects match the baseline's (same class, IoU >= 0.5)")
    return share


def finish(wrong: list[str]) -> int:
    """Exit status of a suite: 1 (and why) when some row's outputs differ from its baseline's."""
    if wrong:
        print("FAILED: outputs differ from the baseline's:\n  " + "\n  ".join(wrong), flush=True)
        return 1
    return 0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main_tracker(args: argparse.Namespace) -> int:
    from . import tracker as bt

    print(f"machine: {machine()} (pinned to one core)")
    rows = bt.throughput()
    print(f"{'streams':>8}{'objects':>9}{'vidpipe obj/s':>15}{'supervision obj/s':>19}{'ratio':>8}")
    for r in rows:
        sv = r["supervision_obj_per_s"]
        print(f"{r['streams']:>8}{r['objects_per_frame']:>9}{r['vidpipe_obj_per_s']:>15}"
              f"{sv if sv is not None else 'n/a':>19}{(str(r['ratio']) + 'x') if r['ratio'] else '':>8}", flush=True)
    wrong = [w for w in map(bt.check, rows) if w]
    print("outputs: " + ("; ".join(f"{r['streams']}x{r['objects_per_frame']} ids {r['ids_vidpipe']}/"
                                   f"{r['ids_supervision']}" for r in rows if "ids_vidpipe" in r) or "not checked"))
    result = {"machine": machine(), "throughput": rows}
    try:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    except (AttributeError, OSError):
        pass
    try:
        import supervision  # noqa: F401
        clip = _resolve_clip("pets")
        dets = bt.detections_of(clip)
        agree = bt.agreement(dets, fps=10.0)
        print(f"pets09 persons, default detector: {agree}")
        result["pets09_agreement"] = agree
    except ImportError:
        print("supervision is not installed: no agreement study (pip install --no-deps supervision==0.26.1)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return finish(wrong)


def main_rtsp(args: argparse.Namespace) -> int:
    from .rtsp import run
    print(f"machine: {machine()}")
    rows = run()
    print(f"{'clients':>8}{'CPU/client %':>14}{'pipeline CPU %':>16}{'latency median ms':>19}{'p95 ms':>8}")
    for r in rows:
        print(f"{r['clients']:>8}{r['server_cpu_per_client_pct']:>14}{r['pipeline_cpu_pct']:>16}"
              f"{r['latency_ms_median']!s:>19}{r['latency_ms_p95']!s:>8}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "rtsp": rows}, fh, indent=2)
    return 0


def main_streams(args: argparse.Namespace) -> int:
    from .streams import run
    print(f"machine: {machine()}")
    print(f"{'size':<11}{'streams':>6}{'loops FPS':>12}{'vidpipe FPS':>14}{'ratio':>8}")
    rows = run(tuple(int(s) for s in args.streams.split(",")) if args.streams != "1,4" else (1, 4, 8, 16))
    wrong: list[str] = []
    for r in rows:
        same_objects(f"{r['size']} x{r['streams']}", r["vidpipe_objects"], r["loops_objects"], wrong)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "streams": rows, "wrong": wrong}, fh, indent=2)
    return finish(wrong)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "make_clip", None):
        from .gpu import make_bench_clip
        src = _resolve_clip(args.clip_source) if args.clip_source else None
        print(make_bench_clip(args.make_clip, source=src, frames=args.clip_frames, codec=args.clip_codec))
        return 0
    if getattr(args, "device", "cpu") != "cpu":
        from .gpu import main_gpu
        return main_gpu(args)
    if getattr(args, "suite", "e2e") == "streams":
        return main_streams(args)
    if getattr(args, "suite", "e2e") == "tracker":
        return main_tracker(args)
    if args.suite == "rtsp":
        return main_rtsp(args)
    if args.suite == "service":
        from .service import main_service
        return main_service(args)
    if args.suite == "messaging":
        from .messaging import main_messaging
        return main_messaging(args)
    if args.suite == "record":
        from .record import main_record
        return main_record(args)
    if args.suite == "analytics":
        from .analytics import main_analytics
        return main_analytics(args)
    from .. import assets
    from ..infer.labels import load_labels

    model, labels_path = assets.default_model()
    labels = load_labels(labels_path)
    threshold = 0.4
    results, wrong = [], []
    print(f"machine: {machine()}")
    print(f"{'clip':<28}{'streams':>8}{'loop FPS':>10}{'vidpipe FPS':>13}{'ratio':>8}{'objects loop/vidpipe':>22}"
          f"{'matched':>9}")
    for clip_name in args.clips.split(","):
        clip = _resolve_clip(clip_name.strip())
        for streams in (int(s) for s in args.streams.split(",")):
            loop_fps, vp_fps = 0.0, 0.0
            with tempfile.TemporaryDirectory(prefix="vidpipe-bench-") as tmp:
                for _ in range(args.repeat or 1):
                    fps, loop_objs = hand_written_loop(clip, streams, args.frames, model, labels, threshold, tmp)
                    loop_fps = max(loop_fps, fps)
                    fps, vp_objs = vidpipe_pipeline(clip, streams, args.frames, threshold, tmp)
                    vp_fps = max(vp_fps, fps)
            ratio = vp_fps / loop_fps if loop_fps else float("nan")
            share = same_detections(f"{os.path.basename(clip)} x{streams}", vp_objs, loop_objs, wrong)
            n_loop, n_vp = sum(map(len, loop_objs.values())), sum(map(len, vp_objs.values()))
            results.append({"clip": os.path.basename(clip), "streams": streams, "frames_per_stream": args.frames,
                            "loop_fps": round(loop_fps, 2), "vidpipe_fps": round(vp_fps, 2), "ratio": round(ratio, 3),
                            "loop_objects": n_loop, "vidpipe_objects": n_vp, "matched_share": round(share, 4)})
            print(f"{os.path.basename(clip):<28}{streams:>8}{loop_fps:>10.1f}{vp_fps:>13.1f}{ratio:>7.2f}x"
                  f"{f'{n_loop}/{n_vp}':>22}{share:>9.1%}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "results": results, "wrong": wrong}, fh, indent=2)
    return finish(wrong)


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    raise SystemExit(main(ap.parse_args()))
