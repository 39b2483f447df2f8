#!/usr/bin/env python3
"""deepstream-test1-usbcam in vidpipe: a V4L2 camera (/dev/videoN) -> detection -> osd -> file.

    python examples/deepstream_test1_usbcam.py /dev/video0 --out cam.mp4 --seconds 10
"""
from __future__ import annotations

import argparse
import sys
import threading

import vidpipe
from vidpipe import assets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from deepstream_test1 import osd_sink_pad_probe  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("device", nargs="?", default="/dev/video0", help="V4L2 camera device")
    ap.add_argument("--out", default="usbcam_out.mp4", help="output MP4")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    args = ap.parse_args(argv)
    pipeline = vidpipe.Pipeline("deepstream-test1-usbcam")
    src = vidpipe.make_element("urisrc", "usb-cam-source", uri=args.device, live=True)
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=1, live_source=True, batched_push_timeout=40000)
    pgie = vidpipe.make_element("infer", "primary-inference", config=assets.default_infer_config())
    osd = vidpipe.make_element("osd", "onscreendisplay")
    pipeline.link(src, mux, pgie, osd, vidpipe.make_element("encoder", "encoder"),
                  vidpipe.make_element("filesink", "sink", location=args.out))
    osd.sink_pad.add_probe(osd_sink_pad_probe)
    if args.seconds:
        threading.Timer(args.seconds, pipeline.send_eos).start()
    return pipeline.run_app()


if __name__ == "__main__":
    sys.exit(main())
