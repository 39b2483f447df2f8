#!/usr/bin/env python3
"""deepstream-test1 in vidpipe: file -> decode -> streammux -> infer -> osd -> encoder -> file.

A probe on the osd's sink pad counts objects per class on every frame and adds the overlay
"Frame Number=N Number of Objects=M Vehicle_count=V Person_count=P", as DeepStream's sample does.

    python examples/deepstream_test1.py                      # default model on the default clip
    python examples/deepstream_test1.py clip.h264 --config dstest1_pgie_config.txt --out out.mp4
"""
from __future__ import annotations

import argparse
import sys

import vidpipe
from vidpipe import PadProbeReturn, Text, assets

VEHICLES = {"car", "bus", "truck", "motorcycle"}


def osd_sink_pad_probe(pad, batch):
    for frame in batch.frames:
        vehicles = sum(o.label in VEHICLES for o in frame.objects)
        persons = sum(o.label == "person" for o in frame.objects)
        text = (f"Frame Number={frame.frame_num} Number of Objects={len(frame.objects)} "
                f"Vehicle_count={vehicles} Person_count={persons}")
        print(text)
        frame.display_meta.texts.append(Text(text, x=10, y=12, font_scale=0.5, color=(255, 255, 255),
                                             background=(0, 0, 0)))
    return PadProbeReturn.OK


def build(uri: str, out: str | None, config: str | None) -> vidpipe.Pipeline:
    pipeline = vidpipe.Pipeline("deepstream-test1")
    source = vidpipe.make_element("urisrc", "file-source", uri=uri)
    streammux = vidpipe.make_element("streammux", "stream-muxer", batch_size=1)
    pgie = vidpipe.make_element("infer", "primary-inference", config=config or assets.default_infer_config())
    osd = vidpipe.make_element("osd", "onscreendisplay")
    if out:
        tail = [vidpipe.make_element("encoder", "encoder", bitrate=4_000_000),
                vidpipe.make_element("filesink", "file-sink", location=out)]
    else:
        tail = [vidpipe.make_element("fakesink", "fake-sink")]
    pipeline.link(source, streammux, pgie, osd, *tail)
    osd.sink_pad.add_probe(osd_sink_pad_probe)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="video file or URI (default: the default clip)")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    ap.add_argument("--out", default="deepstream_test1_out.mp4", help="output MP4 ('' for none)")
    args = ap.parse_args(argv)
    return build(args.input or assets.default_clip(), args.out or None, args.config).run_app()


if __name__ == "__main__":
    sys.exit(main())
