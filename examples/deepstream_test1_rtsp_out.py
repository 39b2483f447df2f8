#!/usr/bin/env python3
"""deepstream-test1-rtsp-out in vidpipe: detect, draw, encode (H.264/H.265) and serve over RTSP
at rtsp://localhost:8554/ds-test with vidpipe's own server. Watch it with any player:

    python examples/deepstream_test1_rtsp_out.py -i clip.mp4 -c H264 -b 4000000
    ffplay rtsp://localhost:8554/ds-test     (or vlc, or gst-launch-1.0 playbin uri=...)
"""
from __future__ import annotations

import argparse
import sys

import vidpipe
from vidpipe import assets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from deepstream_test1 import osd_sink_pad_probe  # noqa: E402  (same probe as test1)


def build(uri: str, codec: str, bitrate: int, port: int, config: str | None, loop: bool) -> vidpipe.Pipeline:
    pipeline = vidpipe.Pipeline("deepstream-test1-rtsp-out")
    source = vidpipe.make_element("urisrc", "file-source", uri=uri, file_loop=loop)
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=1)
    pgie = vidpipe.make_element("infer", "primary-inference",
                                config=config or assets.default_infer_config())
    osd = vidpipe.make_element("osd", "onscreendisplay")
    encoder = vidpipe.make_element("encoder", "encoder", codec=codec.lower(), bitrate=bitrate, iframeinterval=30,
                                   tune="zerolatency")
    sink = vidpipe.make_element("rtspsink", "rtsp-sink", codec=codec, port=port, mount="/ds-test")
    pipeline.link(source, mux, pgie, osd, encoder, sink)
    osd.sink_pad.add_probe(osd_sink_pad_probe)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", help="video file or URI (default: the default clip)")
    ap.add_argument("-c", "--codec", default="H264", choices=["H264", "H265"], help="RTSP streaming codec")
    ap.add_argument("-b", "--bitrate", type=int, default=4_000_000, help="encoder bitrate (bits/s)")
    ap.add_argument("-p", "--port", type=int, default=8554, help="RTSP port (0: any free port)")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    ap.add_argument("--loop", action="store_true", help="loop the input until Ctrl-C")
    args = ap.parse_args(argv)
    pipeline = build(args.input or assets.default_clip(), args.codec, args.bitrate, args.port, args.config, args.loop)
    return pipeline.run_app(lambda p: print(f"\n *** Launched RTSP Streaming at {p['rtsp-sink'].url} ***\n", flush=True))


if __name__ == "__main__":
    sys.exit(main())
