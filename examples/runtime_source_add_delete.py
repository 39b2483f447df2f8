#!/usr/bin/env python3
"""runtime_source_add_delete in vidpipe: streams are added to a running pipeline every few
seconds, then removed one by one; the bus reports stream-added / stream-removed.

    python examples/runtime_source_add_delete.py a.mp4 --max-sources 4 --interval 2
"""
from __future__ import annotations

import argparse
import sys

import vidpipe
from vidpipe import MessageType, assets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("uri", nargs="?", help="the video each new stream plays (looped; default: the default clip)")
    ap.add_argument("--max-sources", type=int, default=4)
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between additions/removals")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    args = ap.parse_args(argv)
    uri = args.uri or assets.default_clip()
    pipeline = vidpipe.Pipeline("runtime-add-delete")
    first = vidpipe.make_element("urisrc", "source-0", uri=uri, file_loop=True, live=True)
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=args.max_sources, batched_push_timeout=40000,
                               live_source=True)
    pgie = vidpipe.make_element("infer", "primary-inference",
                                config=args.config or assets.default_infer_config())
    counts: dict[int, int] = {}
    pgie.src_pad.add_probe(lambda pad, b: [counts.__setitem__(f.source_id, counts.get(f.source_id, 0) + 1) for f in b.frames] and None)
    pipeline.add(first)
    pipeline.link(mux, pgie, vidpipe.make_element("fakesink", "sink"))
    first.link(mux)
    pipeline.bus.add_watch(lambda m: m.type in (MessageType.STREAM_ADDED, MessageType.STREAM_REMOVED)
                           and print(f"{m.type.value}: {m.text}", flush=True))
    pipeline.start()
    live = [first]
    try:
        for i in range(1, args.max_sources):
            pipeline.wait(args.interval)
            src = vidpipe.make_element("urisrc", f"source-{i}", uri=uri, file_loop=True, live=True)
            pipeline.add_source(src, mux)
            live.append(src)
        while len(live) > 1:
            pipeline.wait(args.interval)
            pipeline.remove_source(live.pop())
        pipeline.wait(args.interval)
    finally:
        pipeline.stop()
    print("frames per stream: " + " ".join(f"{k}:{v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
