"""Messaging: events -> msgconv -> msgbroker: payloads, the outbox, config errors, the CLI and
test4's forms (tests/test_brokers.py runs every adapter against its real broker)."""
from __future__ import annotations

import json
import subprocess

import pytest

from vidpipe import Pipeline, make_element
from vidpipe.bench.brokers import Mosquitto, RedisServer
from vidpipe.errors import ConfigError
from vidpipe.messaging import (
    EventMsgMeta,
    Outbox,
    PayloadMaker,
    attach_event,
    load_msgconv_config,
)

MSGCONV = """[sensor0]
enable=1
type=Camera
id=CAM_0
location=45.29;-75.83;48.15
description=Entrance camera
coordinate=5.2;10.1;11.2

[place0]
enable=1
id=1
type=building/entrance
name=Main entrance
location=30.32;-40.55;100.0
coordinate=1.0;2.0;3.0
place-sub-field1=Door A
place-sub-field2=Lane 1
place-sub-field3=Level 0

[analytics0]
enable=1
id=MOD_1
description=People counting
source=vidpipe
version=1.0
"""


needs_mosquitto = pytest.mark.skipif(not Mosquitto.available(), reason="mosquitto is not installed "
                                     "(bash scripts/setup.sh --test)")
needs_redis = pytest.mark.skipif(not RedisServer.available(), reason="redis-server is not installed")


def event_pipeline(broker_props: dict, frames: int = 50, per_frame: int = 2, payload_type: int = 0,
                   live: bool = False, msgconv: str = "") -> Pipeline:
    """videotestsrc -> (a probe attaching `per_frame` events, ids frame*10+k) -> msgconv -> msgbroker."""
    p = Pipeline()
    src = make_element("videotestsrc", "src", num_buffers=frames, width=64, height=48, is_live=live)
    conv = make_element("msgconv", "conv", payload_type=payload_type, multiple_payloads=True, config=msgconv)
    broker = make_element("msgbroker", "broker", **broker_props)
    p.add(src, conv, broker)
    p.link(src, conv, broker)

    def probe(pad, batch):
        for f in batch.frames:
            for k in range(per_frame):
                attach_event(f, type="entry", object_type="person", object_id=f.frame_num * 10 + k, label="person",
                             bbox=(1, 2, 3, 4), confidence=0.9)
    src.src_pad.add_probe(probe)
    return p


def object_ids(messages) -> list[int]:
    """The event ids of full-schema payloads, one per distinct messageid (duplicates of an
    at-least-once delivery collapse)."""
    return sorted(int(m["object"]["id"]) for m in {m["messageid"]: m for m in messages}.values())


# -- payloads ---------------------------------------------------------------------------------------
def test_full_payload_has_deepstreams_fields(tmp_path):
    cfg_path = tmp_path / "msgconv.txt"
    cfg_path.write_text(MSGCONV)
    maker = PayloadMaker(load_msgconv_config(str(cfg_path)))
    ev = EventMsgMeta(type="entry", object_type="vehicle", object_id=42, confidence=0.875, bbox=(10, 20, 30, 40),
                      vehicle={"type": "sedan", "color": "blue", "license": "AB123"}, extra={"videoPath": "cam0.mp4"})
    m = maker.full(ev, "2026-11-25T10:00:00.000Z")
    assert set(m) == {"messageid", "mdsversion", "@timestamp", "place", "sensor", "analyticsModule", "object", "event",
                      "videoPath"}
    assert m["mdsversion"] == "1.0" and m["@timestamp"] == "2026-11-25T10:00:00.000Z" and m["videoPath"] == "cam0.mp4"
    assert m["sensor"] == {"id": "CAM_0", "type": "Camera", "description": "Entrance camera",
                           "location": {"lat": 45.29, "lon": -75.83, "alt": 48.15},
                           "coordinate": {"x": 5.2, "y": 10.1, "z": 11.2}}
    assert m["place"]["entrance"] == {"name": "Door A", "lane": "Lane 1", "level": "Level 0",
                                      "coordinate": {"x": 1.0, "y": 2.0, "z": 3.0}}
    assert m["analyticsModule"] == {"id": "MOD_1", "description": "People counting", "source": "vidpipe", "version": "1.0"}
    assert m["object"]["id"] == "42" and m["object"]["bbox"] == {"topleftx": 10, "toplefty": 20, "bottomrightx": 40,
                                                                   "bottomrighty": 60}
    assert m["object"]["vehicle"] == {"type": "sedan", "make": "", "model": "", "color": "blue", "license": "AB123",
                                      "region": "", "confidence": 0.875}
    assert m["event"]["type"] == "entry" and m["event"]["id"] != m["messageid"]


def test_minimal_payload_and_frame_interval_events(tmp_path):
    got = []
    p = Pipeline()
    src = make_element("videotestsrc", "src", num_buffers=7, width=64, height=48)
    conv = make_element("msgconv", "conv", payload_type=1, frame_interval=3)
    p.add(src, conv, make_element("fakesink", "sink"))
    p.link(src, conv, p["sink"])
    src.src_pad.add_probe(lambda pad, b: [f.objects.add(xyxy=[[1, 2, 11, 22], [5, 5, 9, 9]], class_id=0, label="person",
                                                        object_id=[7, 8]) for f in b.frames] and None)
    conv.src_pad.add_probe(lambda pad, b: got.extend(json.loads(x.data) for x in b.user_meta.get("payloads", [])))
    p.run()
    assert [m["id"] for m in got] == ["0", "3", "6"]          # every 3rd frame, one payload per frame
    assert got[0]["version"] == "4.0" and got[0]["objects"] == ["7|1|2|11|22|person", "8|5|5|9|9|person"]


def test_msgconv_config_errors(tmp_path):
    bad = tmp_path / "c.txt"
    bad.write_text("[sensor0]\nlocation=1;2\n")
    with pytest.raises(ConfigError, match=r"c.txt:2: location: expected 3 numbers, got 2"):
        load_msgconv_config(str(bad))
    yml = tmp_path / "c.yml"
    yml.write_text("sensor0:\n  id: CAM_0\n  location: [1, 2, 3]\n")
    assert load_msgconv_config(str(yml)).sensors == {0: {"id": "CAM_0", "location": "1;2;3"}}
    yml.write_text("sensor0:\n  id: CAM_0\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"c.yml:3: colour: unknown key in \[sensor0\]"):
        load_msgconv_config(str(yml))
    bad.write_text("[camera0]\nid=1\n")
    with pytest.raises(ConfigError, match=r"c.txt:1: unknown group \[camera0\]"):
        load_msgconv_config(str(bad))
    with pytest.raises(ValueError, match="event type must be one of"):
        EventMsgMeta(type="arrived")


# -- outbox -----------------------------------------------------------------------------------------
def test_outbox_keeps_messages_across_processes_and_counts_drops(tmp_path):
    path = str(tmp_path / "o.db")
    box = Outbox(path)
    box.put([(f"m{i}", "t", f"data{i}") for i in range(5)])
    box.put([("m1", "t", "again")])                          # same id: not queued twice
    first = box.peek(2)
    box.ack([first[0].seq])
    box.close()
    box = Outbox(path)                                       # a new process opens the same file
    assert [q.id for q in box.peek(10)] == ["m1", "m2", "m3", "m4"] and box.peek(1)[0].data == "data1"
    small = Outbox(str(tmp_path / "s.db"), max_messages=3)
    assert small.put([(f"x{i}", "t", "d") for i in range(5)]) == 2 and small.dropped == 2
    assert [q.id for q in small.peek(10)] == ["x2", "x3", "x4"]       # drop-oldest
    newest = Outbox(str(tmp_path / "n.db"), max_messages=3, policy="drop-newest")
    newest.put([(f"y{i}", "t", "d") for i in range(5)])
    assert [q.id for q in newest.peek(10)] == ["y0", "y1", "y2"]


# -- adapters ---------------------------------------------------------------------------------------
def test_file_adapter_gets_every_message(tmp_path):
    out = tmp_path / "events.jsonl"
    event_pipeline({"url": f"file://{out}", "outbox": str(tmp_path / "o.db")}, frames=30).run()
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert len(rows) == 60 and len({r["id"] for r in rows}) == 60
    assert all(r["id"] == r["payload"]["messageid"] for r in rows)      # the outbox id is the messageid
    assert object_ids([r["payload"] for r in rows]) == sorted(f * 10 + k for f in range(30) for k in range(2))
    assert len(Outbox(str(tmp_path / "o.db"))) == 0


@needs_mosquitto
def test_mqtt_down_at_start_then_up_and_a_next_run_sends_what_was_left(tmp_path):
    broker = Mosquitto(str(tmp_path))                           # its port is chosen; it is not started yet
    url, box = broker.url("events"), str(tmp_path / "o.db")
    warnings = []
    p = event_pipeline({"url": url, "outbox": box, "flush_timeout": 0.2}, frames=20)
    p.bus.add_watch(lambda m: warnings.append(m.text) if m.type.value == "warning" else None)
    p.run()                                                   # the broker never came: the pipeline still ran
    assert any(f"cannot reach {url}" in w for w in warnings)
    assert len(Outbox(box)) == 40                             # all kept on disk
    broker.start()
    sub = broker.consumer("events")
    try:
        event_pipeline({"url": url, "outbox": box}, frames=0).run()   # a next run with nothing new sends the 40
        got = [json.loads(b) for b in sub.wait_for(40)]
        assert object_ids(got) == sorted(f * 10 + k for f in range(20) for k in range(2))
        assert len(Outbox(box)) == 0
    finally:
        sub.close()
        broker.stop()


def test_bad_targets_are_clear_errors(tmp_path):
    for props, msg in (({"url": "kafkaa://h:1/t"}, "unknown broker scheme 'kafkaa'"),
                       ({"proto_lib": "libnvds_kafka_proto.so", "conn_str": "localhost"}, "conn-str 'localhost': expected"),
                       ({"proto_lib": "libfoo.so", "conn_str": "h;1;t"}, "unknown adapter library"),
                       ({"url": "mqtt://127.0.0.1:1883"}, "no topic"),
                       ({}, "set url=")):
        p = event_pipeline({**props, "outbox": str(tmp_path / "o.db")}, frames=1)
        with pytest.raises(ConfigError, match=msg):
            p.run()


@needs_redis
def test_redis_streams_entries_carry_the_message_id(tmp_path):
    import redis
    server = RedisServer(str(tmp_path)).start()
    try:
        event_pipeline({"proto_lib": "/opt/nvidia/deepstream/lib/libnvds_redis_proto.so",
                        "conn_str": f"127.0.0.1;{server.port}", "topic": "events", "outbox": str(tmp_path / "o.db")},
                       frames=25).run()
        entries = redis.Redis(port=server.port).xrange("events")
        payloads = [json.loads(fields[b"payload"]) for _, fields in entries]
        assert all(fields[b"id"].decode() == json.loads(fields[b"payload"])["messageid"] for _, fields in entries)
        assert object_ids(payloads) == sorted(f * 10 + k for f in range(25) for k in range(2))
        assert len({fields[b"id"] for _, fields in entries}) == 50
    finally:
        server.stop()


def test_cli_events_to_a_file(clip, detector_config, tmp_path):
    import sys
    events = tmp_path / "events.jsonl"
    r = subprocess.run([sys.executable, "-m", "vidpipe", "run", clip[0], "--config", detector_config, "--events",
                        f"file://{events}", "--events-every", "10", "--out", str(tmp_path / "o.mp4")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in events.read_text().splitlines()]
    assert [row["payload"]["id"] for row in rows] == ["0", "10", "20"]          # frames 0, 10, 20 of 30
    assert all(len(row["payload"]["objects"]) == 3 for row in rows)             # the three squares
    assert f"messages to file://{events}: 3 acknowledged, 0 kept in the outbox" in r.stdout


def test_fast_payload_text_is_exactly_jsons():
    """msgconv writes full payloads from templates; the text must be json.dumps(full()) byte for byte."""
    import random

    from vidpipe.messaging.events import EVENT_TYPES, OBJECT_TYPES
    maker = PayloadMaker()
    rnd = random.Random(1)
    for _ in range(2000):
        kind = rnd.choice(OBJECT_TYPES)
        extra = {kind: {"age": 3} if kind == "person" else {"make": 'x"y'}} \
            if rnd.random() < 0.2 and kind in ("vehicle", "person") else {}
        ev = EventMsgMeta(type=rnd.choice(EVENT_TYPES), object_type=kind, object_id=rnd.randint(-1, 10**6),
                          label=rnd.choice(["", "car", 'we"ird\\', "ünï"]), confidence=rnd.random(),
                          bbox=tuple(rnd.uniform(-5, 2000) for _ in range(4)), **extra)
        mid, text = maker.full_json(ev, "2026-01-01T00:00:00.000Z")
        ref = maker.full(ev, "2026-01-01T00:00:00.000Z")
        ref["messageid"], ref["event"]["id"] = mid, json.loads(text)["event"]["id"]
        assert text == json.dumps(ref, separators=(",", ":"))
