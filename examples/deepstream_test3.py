#!/usr/bin/env python3
"""deepstream-test3 in vidpipe: N inputs (files, rtsp://, http://) batched -> infer -> tiler ->
osd -> a tiled video file, an RTSP stream, or nothing (--no-display); per-stream FPS every 5 s.

    python examples/deepstream_test3.py -i a.mp4 rtsp://cam/1 --out tiled.mp4
    python examples/deepstream_test3.py -i a.mp4 b.mp4 --out rtsp://127.0.0.1:8554/ds-test --file-loop
"""
from __future__ import annotations

import argparse
import sys
import threading
from urllib.parse import urlparse

import vidpipe
from vidpipe import assets
from vidpipe.core.perf import PerfMonitor


def pgie_src_pad_probe(pad, batch):
    for frame in batch.frames:
        counts: dict[str, int] = {}
        for o in frame.objects:
            counts[o.label] = counts.get(o.label, 0) + 1
        print(f"Frame Number={frame.frame_num} Source={frame.source_id} Number of Objects={len(frame.objects)} "
              + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def build(uris: list[str], out: str | None, *, config: str | None = None, file_loop: bool = False,
          disable_probe: bool = False) -> vidpipe.Pipeline:
    pipeline = vidpipe.Pipeline("deepstream-test3")
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=len(uris), batched_push_timeout=40000,
                               width=640, height=360)
    pipeline.add(mux)
    for i, uri in enumerate(uris):
        src = vidpipe.make_element("urisrc", f"source-bin-{i:02d}", uri=uri, file_loop=file_loop)
        pipeline.add(src)
        src.link(mux)
    pgie = vidpipe.make_element("infer", "primary-inference",
                                config=config or assets.default_infer_config())
    tiler = vidpipe.make_element("tiler", "nvtiler", width=1280, height=720)
    osd = vidpipe.make_element("osd", "onscreendisplay")
    if out is None:
        tail = [vidpipe.make_element("fakesink", "sink")]
    elif out.startswith("rtsp://"):
        u = urlparse(out)
        tail = [vidpipe.make_element("rtspsink", "sink", port=u.port or 8554, mount=u.path or "/ds-test",
                                     bind_address=u.hostname or "127.0.0.1")]
    else:
        tail = [vidpipe.make_element("encoder", "encoder"), vidpipe.make_element("filesink", "sink", location=out)]
    pipeline.link(mux, pgie, tiler, osd, *tail)
    if not disable_probe:
        pgie.src_pad.add_probe(pgie_src_pad_probe)
    return pipeline


def report_fps(perf: PerfMonitor, stop: threading.Event, every: float = 5.0) -> None:
    while not stop.wait(every):
        print("**PERF: " + " ".join(f"stream{sid}={cur:.1f}fps/{lat:.0f}ms" for sid, (cur, _, lat) in perf.snapshot().items()),
              flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", nargs="+", help="URIs (default: the default clip twice)")
    ap.add_argument("--out", default="deepstream_test3_out.mp4", help="tiled MP4, or rtsp://host:port/path")
    ap.add_argument("--no-display", action="store_true", help="no output at all (fakesink)")
    ap.add_argument("--file-loop", action="store_true", help="loop file inputs")
    ap.add_argument("--disable-probe", action="store_true", help="do not print per-frame object counts")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    args = ap.parse_args(argv)
    uris = args.input or [assets.default_clip()] * 2
    pipeline = build(uris, None if args.no_display else args.out, config=args.config, file_loop=args.file_loop,
                     disable_probe=args.disable_probe)
    perf = PerfMonitor(pipeline["primary-inference"].src_pad)
    stop = threading.Event()
    threading.Thread(target=report_fps, args=(perf, stop), daemon=True).start()
    def banner(p: vidpipe.Pipeline) -> None:
        if p["sink"].factory_name == "rtspsink":
            print(f"*** Launched RTSP Streaming at {p['sink'].url} ***", flush=True)
    rc = pipeline.run_app(banner)
    stop.set()
    print("per-stream frames: " + " ".join(f"{sid}:{n}" for sid, n in sorted(perf.total.items())))
    return rc


if __name__ == "__main__":
    sys.exit(main())
