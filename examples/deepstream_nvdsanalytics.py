#!/usr/bin/env python3
"""deepstream-nvdsanalytics in vidpipe: N inputs batched -> detector -> tracker -> analytics (ROI
filtering, line crossing, direction, overcrowding from a DeepStream config_nvdsanalytics.txt) ->
tiler -> osd -> a tiled video file; per frame, the analytics results printed as the DeepStream
sample prints them.

    python examples/deepstream_nvdsanalytics.py -i a.mp4 b.mp4 --out analytics.mp4
    python examples/deepstream_nvdsanalytics.py -i a.mp4 --config my_config_nvdsanalytics.txt --no-display
"""
from __future__ import annotations

import argparse
import os
import sys

import vidpipe
from vidpipe import assets

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "nvdsanalytics", "config_nvdsanalytics.txt")
VEHICLES = {"car", "bus", "truck", "motorcycle", "bicycle"}


def nvanalytics_src_pad_buffer_probe(pad, batch):
    """The sample's probe, line by line: object info (roiStatus, ocStatus, lcStatus, dirStatus)
    and frame info (objInROIcnt, objLCCurrCnt, objLCCumCnt, ocStatus)."""
    for frame in batch.frames:
        meta = frame.meta.user_meta["analytics"]          # NvDsAnalyticsFrameMeta
        vehicles = persons = 0
        for obj in frame.objects:
            vehicles += obj.label in VEHICLES
            persons += obj.label == "person"
            info = meta.obj_info(obj)                      # NvDsAnalyticsObjInfo
            if info.lcStatus:
                print(f"Object {obj.object_id} crossed {info.lcStatus} (roi {info.roiStatus}, "
                      f"direction {info.dirStatus or '-'})")
            if info.ocStatus:
                print(f"Object {obj.object_id} is in overcrowded {info.ocStatus}")
        print(f"Frame Number={frame.frame_num} stream id={frame.source_id} Number of Objects={len(frame.objects)} "
              f"Vehicle Count={vehicles} Person Count={persons}")
        if meta.objInROIcnt:
            print(f"Objs in ROI: {meta.objInROIcnt}")
        if meta.objLCCumCnt:
            print(f"Linecrossing Cumulative: {meta.objLCCumCnt}")
            print(f"Linecrossing Current Frame: {meta.objLCCurrCnt}")
        if meta.ocStatus:
            print(f"Overcrowding status: {meta.ocStatus}")


def build(uris: list[str], out: str | None, config: str, *, frames: int = -1) -> vidpipe.Pipeline:
    p = vidpipe.Pipeline("deepstream-nvdsanalytics")
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=len(uris), batched_push_timeout=40000,
                               width=1280, height=720)
    p.add(mux)
    for i, uri in enumerate(uris):
        src = vidpipe.make_element("urisrc", f"source-bin-{i:02d}", uri=uri, num_buffers=frames)
        p.add(src)
        src.link(mux)
    pgie = vidpipe.make_element("infer", "primary-inference", config=assets.default_infer_config())
    tracker = vidpipe.make_element("tracker", "tracker", algorithm="bytetrack")
    analytics = vidpipe.make_element("nvdsanalytics", "analytics", config_file=config)
    tiler = vidpipe.make_element("tiler", "nvtiler", width=1280, height=720)
    osd = vidpipe.make_element("osd", "onscreendisplay")
    if out is None:
        tail = [vidpipe.make_element("fakesink", "sink")]
    else:
        tail = [vidpipe.make_element("encoder", "encoder"), vidpipe.make_element("filesink", "sink", location=out)]
    p.link(mux, pgie, tracker, analytics, tiler, osd, *tail)
    analytics.src_pad.add_probe(nvanalytics_src_pad_buffer_probe)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", nargs="+", help="URIs (default: the default clip twice)")
    ap.add_argument("--config", default=CONFIG, help="config_nvdsanalytics.txt (default: the one beside this example)")
    ap.add_argument("--out", default="deepstream_nvdsanalytics_out.mp4", help="tiled, annotated MP4")
    ap.add_argument("--no-display", action="store_true", help="no video output (fakesink)")
    ap.add_argument("--frames", type=int, default=-1, help="stop each input after this many frames")
    args = ap.parse_args(argv)
    uris = args.input or [assets.default_clip()] * 2
    try:
        p = build(uris, None if args.no_display else args.out, args.config, frames=args.frames)
        p.run()
    except vidpipe.VidpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
