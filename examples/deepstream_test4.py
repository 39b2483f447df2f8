#!/usr/bin/env python3
"""deepstream-test4 in vidpipe: detect -> track -> an event for the first object of every 30th
frame (vehicle and person fields filled) -> msgconv -> msgbroker, with DeepStream's flags:

    python examples/deepstream_test4.py -i a.mp4 -p libnvds_mqtt_proto.so --conn-str "localhost;1883" -t events
    python examples/deepstream_test4.py -i a.mp4 --conn-str mqtt://localhost:1883/events -s 1 --no-display
    python examples/deepstream_test4.py -i a.mp4 --conn-str file://events.jsonl
"""
from __future__ import annotations

import argparse
import os
import sys

import vidpipe
from vidpipe import assets
from vidpipe.messaging import attach_event

HERE = os.path.dirname(os.path.abspath(__file__))
MSGCONV = os.path.join(HERE, "test4", "msgconv_config.txt")
VEHICLES = {"car", "truck", "bus", "motorcycle"}


def osd_sink_pad_buffer_probe(pad, batch):
    """As the sample: every 30th frame, an event for the frame's first object."""
    for frame in batch.frames:
        if frame.frame_num % 30 or not len(frame.objects):
            continue
        obj = frame.objects[0]
        if obj.label in VEHICLES:
            attach_event(frame, obj, type="moving", object_type="vehicle", sensor_id=0, place_id=0, module_id=0,
                         vehicle={"type": "sedan", "make": "Bugatti", "model": "M", "color": "blue",
                                  "license": "XX1234", "region": "CA"})
        elif obj.label == "person":
            attach_event(frame, obj, type="entry", object_type="person", sensor_id=0, place_id=0, module_id=0,
                         person={"age": 45, "gender": "male", "hair": "black", "cap": "none", "apparel": "formal"})


def build(uri: str, *, proto_lib: str, conn_str: str, topic: str, cfg_file: str, schema: int, out: str | None,
          frames: int = -1) -> vidpipe.Pipeline:
    p = vidpipe.Pipeline("deepstream-test4")
    src = vidpipe.make_element("urisrc", "source", uri=uri, num_buffers=frames)
    mux = vidpipe.make_element("streammux", "stream-muxer", batch_size=1)
    pgie = vidpipe.make_element("infer", "primary-inference", config=assets.default_infer_config())
    tracker = vidpipe.make_element("tracker", "tracker", algorithm="bytetrack")
    osd = vidpipe.make_element("osd", "onscreendisplay")
    conv = vidpipe.make_element("msgconv", "nvmsg-converter", config=MSGCONV, payload_type=schema)
    broker_props = {"url": conn_str} if "://" in conn_str else {"proto_lib": proto_lib, "conn_str": conn_str}
    broker = vidpipe.make_element("msgbroker", "nvmsg-broker", topic=topic, config=cfg_file, **broker_props)
    p.add(src, mux, pgie, tracker, osd, conv, broker)
    src.link(mux)
    p.link(mux, pgie, tracker, osd, conv, broker)
    if out:
        enc, sink = vidpipe.make_element("encoder", "encoder"), vidpipe.make_element("filesink", "sink", location=out)
        p.add(enc, sink)
        p.link(broker, enc, sink)
    osd.sink_pad.add_probe(osd_sink_pad_buffer_probe)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", help="input file or URI (default: the default clip)")
    ap.add_argument("-p", "--proto-lib", default="libnvds_mqtt_proto.so", help="DeepStream adapter library name")
    ap.add_argument("--conn-str", required=True, help="'host;port' (with -p), or a URL: mqtt://, redis://, file://")
    ap.add_argument("-c", "--cfg-file", default="", help="adapter config file (username, password, qos ...)")
    ap.add_argument("-t", "--topic", default="", help="topic / stream name")
    ap.add_argument("-s", "--schema-type", type=int, choices=[0, 1], default=0, help="0 full, 1 minimal payload")
    ap.add_argument("--no-display", action="store_true", help="no video output")
    ap.add_argument("--out", default="deepstream_test4_out.mp4", help="annotated MP4 (unless --no-display)")
    ap.add_argument("--frames", type=int, default=-1, help="stop after this many frames")
    args = ap.parse_args(argv)
    try:
        p = build(args.input or assets.default_clip(), proto_lib=args.proto_lib, conn_str=args.conn_str,
                  topic=args.topic, cfg_file=args.cfg_file, schema=args.schema_type,
                  out=None if args.no_display else args.out, frames=args.frames)
        p.run()
    except vidpipe.VidpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    c = p["nvmsg-broker"].counters
    print(f"messages: {c['acknowledged']} acknowledged, {c['queued']} queued, {c['dropped']} dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
