#!/usr/bin/env python3
"""deepstream-testsr in vidpipe: smart record. Each input's encoded packets are cached (15 s); when
the detector first sees a person in a stream, a clip of that stream's own bytes (no re-encoding)
is cut from 2 s before to 7 s after (a person appearing again while it is written extends it), like
DeepStream's test sample and its defaults.

    python examples/deepstream_testsr.py -i a.mp4 rtsp://cam/1 --dir clips
    python examples/deepstream_testsr.py -i a.mp4 --start-before 5 --duration 20 --container mkv
"""
from __future__ import annotations

import argparse
import os
import sys

import vidpipe
from vidpipe import assets


def build(uris: list[str], folder: str, *, cache: float = 15, start_before: float = 2, duration: float = 7,
          container: int = 0, frames: int = -1) -> vidpipe.Pipeline:
    p = vidpipe.Pipeline("deepstream-testsr")
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=len(uris), batched_push_timeout=40000)
    p.add(mux)
    for i, uri in enumerate(uris):
        src = vidpipe.make_element("urisrc", f"source-bin-{i:02d}", uri=uri, num_buffers=frames,
                                   smart_record=2, smart_rec_cache=cache, smart_rec_container=container,
                                   smart_rec_dir_path=folder, smart_rec_file_prefix="testsr",
                                   smart_rec_default_duration=duration)
        p.add(src)
        src.link(mux)
    pgie = vidpipe.make_element("infer", "primary-inference", config=assets.default_infer_config())
    sink = vidpipe.make_element("fakesink", "sink")
    p.link(mux, pgie, sink)
    seen: dict[int, bool] = {}   # per stream: was a person in the previous frame

    def pgie_src_pad_probe(pad, batch):
        for frame in batch.frames:
            person = any(o.label == "person" for o in frame.objects)
            if person and not seen.get(frame.source_id, False):   # a person appears: record
                path = p.smart_record.start(frame, start_before=start_before, duration=duration)
                print(f"Recording started: stream {frame.source_id} at {frame.pts_seconds:.2f} s -> {path}",
                      flush=True)
            seen[frame.source_id] = person

    def on_done(info):
        print(f"Recording done: {info.path} {info.first_pts:.2f}-{info.last_pts:.2f} s ({info.duration:.2f} s)"
              + (f", ended early: {info.error}" if info.error else ""), flush=True)
    pgie.src_pad.add_probe(pgie_src_pad_probe)
    p.smart_record.on_done.append(on_done)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", nargs="+", help="URIs (default: the default clip)")
    ap.add_argument("--dir", default="testsr_clips", help="folder for the clips (default testsr_clips)")
    ap.add_argument("--cache", type=float, default=15, help="seconds of packets cached per stream (default 15)")
    ap.add_argument("--start-before", type=float, default=2, help="seconds before the trigger (default 2)")
    ap.add_argument("--duration", type=float, default=7, help="seconds after the trigger (default 7)")
    ap.add_argument("--container", choices=["mp4", "mkv"], default="mp4")
    ap.add_argument("--frames", type=int, default=-1, help="stop each input after this many frames")
    args = ap.parse_args(argv)
    uris = args.input or [assets.default_clip()]
    try:
        os.makedirs(args.dir, exist_ok=True)
        p = build(uris, args.dir, cache=args.cache, start_before=args.start_before, duration=args.duration,
                  container=0 if args.container == "mp4" else 1, frames=args.frames)
        p.run()
    except (vidpipe.VidpipeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
