#!/usr/bin/env python3
"""deepstream-demux-multi-in-multi-out in vidpipe: N inputs batched through one detector, then
split again (demux): each stream gets its own osd and its own output file out_<k>.mp4.

    python examples/demux_multi_in_multi_out.py a.mp4 b.mp4 --folder outputs
"""
from __future__ import annotations

import argparse
import os
import sys

import vidpipe
from vidpipe import assets


def build(uris: list[str], folder: str, config: str | None = None) -> vidpipe.Pipeline:
    os.makedirs(folder, exist_ok=True)
    pipeline = vidpipe.Pipeline("demux-multi-in-multi-out")
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=len(uris))
    pipeline.add(mux)
    for i, uri in enumerate(uris):
        src = vidpipe.make_element("urisrc", f"source-{i}", uri=uri)
        pipeline.add(src)
        src.link(mux)
    pgie = vidpipe.make_element("infer", "primary-inference",
                                config=config or assets.default_infer_config())
    demux = vidpipe.make_element("demux", "nvstreamdemux")
    pipeline.link(mux, pgie, demux)
    for i in range(len(uris)):
        osd = vidpipe.make_element("osd", f"osd-{i}")
        enc = vidpipe.make_element("encoder", f"encoder-{i}")
        sink = vidpipe.make_element("filesink", f"sink-{i}", location=os.path.join(folder, f"out_{i}.mp4"))
        pipeline.add(osd, enc, sink)
        demux.request_pad(f"src_{i}").link(osd.sink_pad)
        pipeline.link(osd, enc, sink)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="URIs (default: the default clip twice)")
    ap.add_argument("--folder", default="demux_out")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    args = ap.parse_args(argv)
    rc = build(args.inputs or [assets.default_clip()] * 2, args.folder, args.config).run_app()
    if rc == 0:
        print(f"wrote {len(args.inputs) or 2} files under {args.folder}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
