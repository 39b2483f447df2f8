#!/usr/bin/env python3
"""deepstream-rtsp-in-rtsp-out in vidpipe: RTSP cameras in (reconnected when lost), detection,
a tiled view served over RTSP at rtsp://localhost:8554/ds-test.

    python examples/deepstream_rtsp_in_rtsp_out.py -i rtsp://cam1/stream rtsp://cam2/stream
"""
from __future__ import annotations

import argparse
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import deepstream_test3  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", nargs="+", required=True, help="rtsp:// URIs (any URI works)")
    ap.add_argument("-p", "--port", type=int, default=8554, help="RTSP output port")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    args = ap.parse_args(argv)
    extra = ["--config", args.config] if args.config else []
    return deepstream_test3.main(["-i", *args.input, "--out", f"rtsp://127.0.0.1:{args.port}/ds-test",
                                  "--disable-probe", *extra])


if __name__ == "__main__":
    sys.exit(main())
