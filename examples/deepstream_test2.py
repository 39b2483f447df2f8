#!/usr/bin/env python3
"""deepstream-test2 in vidpipe: primary detector -> tracker -> two secondary classifiers on each
tracked object's crop -> osd -> MP4.

The secondary classifiers are built in code by `vidpipe.models` (no download): a vehicle colour
classifier (nearest named colour) and a brightness classifier. They stand in for DeepStream's
VehicleMake/VehicleTypes networks; any ONNX classifier plugs in the same way.
Like DeepStream's sample, a probe prints per-frame counts, tracks confirmed after their
probation period (past-frame meta) and tracks that ended (terminated-track meta).

    python examples/deepstream_test2.py [clip.mp4] [--tracker iou|sort|bytetrack] [--out out.mp4]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import vidpipe
from vidpipe import assets
from vidpipe.models import build_brightness_classifier, build_color_classifier, classifier_config

VEHICLE_IDS = [2, 3, 5, 7]  # COCO-90 ids of the default model: car, motorcycle, bus, truck


def osd_sink_pad_probe(pad, batch):
    for frame in batch.frames:
        vehicles = sum(o.class_id in VEHICLE_IDS for o in frame.objects)
        persons = sum(o.label == "person" for o in frame.objects)
        print(f"Frame Number={frame.frame_num} Number of Objects={len(frame.objects)} "
              f"Vehicle_count={vehicles} Person_count={persons}")
        for o in frame.objects:
            if o.classifications:
                labels = ", ".join(c.top.label for c in o.classifications if c.top)
                print(f"  object {o.object_id} {o.label}: {labels}")
    for t in batch.user_meta.get("past_frame_objects", []):
        frames = ", ".join(str(n) for n, _ in t.past)
        print(f"Past frame meta: stream {t.source_id} object {t.object_id} class {t.class_id} seen in frames {frames}")
    for t in batch.user_meta.get("terminated_tracks", []):
        print(f"Terminated track: stream {t.source_id} object {t.object_id} class {t.class_id} "
              f"frames {t.first_frame}-{t.last_frame} age {t.age}")


def build(uri: str, out: str | None, tracker: str, model_dir: str) -> vidpipe.Pipeline:
    color = build_color_classifier(os.path.join(model_dir, "vehicle_color.onnx"))
    bright = build_brightness_classifier(os.path.join(model_dir, "brightness.onnx"))
    pipeline = vidpipe.Pipeline("deepstream-test2")
    source = vidpipe.make_element("urisrc", "file-source", uri=uri)
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=1)
    pgie = vidpipe.make_element("infer", "primary-inference", config=assets.default_infer_config())
    track = vidpipe.make_element("tracker", "tracker", algorithm=tracker)
    sgie1 = vidpipe.make_element("infer", "secondary1-nvinference-engine",
                                 config=classifier_config(*color, unique_id=2, operate_on_class_ids=VEHICLE_IDS,
                                                          async_mode=True, reinfer_interval=10))
    sgie2 = vidpipe.make_element("infer", "secondary2-nvinference-engine",
                                 config=classifier_config(*bright, unique_id=3))
    osd = vidpipe.make_element("osd", "onscreendisplay")
    tail = [vidpipe.make_element("encoder", "encoder"), vidpipe.make_element("filesink", "file-sink", location=out)] \
        if out else [vidpipe.make_element("fakesink", "fake-sink")]
    pipeline.link(source, mux, pgie, track, sgie1, sgie2, osd, *tail)
    osd.sink_pad.add_probe(osd_sink_pad_probe)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="video file or URI (default: the default clip)")
    ap.add_argument("--tracker", default="bytetrack", choices=["iou", "sort", "bytetrack"])
    ap.add_argument("--out", default="deepstream_test2_out.mp4", help="output MP4 ('' for none)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vidpipe-test2-") as model_dir:
        return build(args.input or assets.default_clip(), args.out or None, args.tracker, model_dir).run_app()


if __name__ == "__main__":
    sys.exit(main())
