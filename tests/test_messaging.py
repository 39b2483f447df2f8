"""Messaging: events -> msgconv -> msgbroker -> real brokers (mosquitto, redis-server) started here,
and nothing lost when the broker goes away."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from conftest import free_port

from vidpipe import Pipeline, make_element
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


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Mosquitto:
    def __init__(self, folder, port: int | None = None, users: dict[str, str] | None = None):
        self.port = port or free_port()
        self.conf = os.path.join(folder, f"mosquitto-{self.port}.conf")
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', which cannot read pytest's private folders
        if users:
            pw = os.path.join(folder, "passwd")
            open(pw, "w").close()
            for u, p in users.items():
                subprocess.run(["mosquitto_passwd", "-b", pw, u, p], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        open(self.conf, "w").write("\n".join(lines) + "\n")
        self.proc = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.proc.kill()
            raise RuntimeError(f"mosquitto did not start: {self.proc.communicate()[1].decode()[-500:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


needs_mosquitto = pytest.mark.skipif(not shutil.which("mosquitto"), reason="mosquitto is not installed "
                                     "(bash scripts/setup.sh --test installs it)")
needs_redis = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")


class Subscriber:
    """A real MQTT consumer (paho), QoS 1, persistent session so nothing published while it is
    connected is missed."""

    def __init__(self, port: int, topic: str):
        import paho.mqtt.client as mqtt
        self.got: list[dict] = []
        self.ready = threading.Event()
        c = self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub", clean_session=False)
        c.on_connect = lambda cl, u, f, r, p=None: (cl.subscribe(topic, qos=1), self.ready.set())
        c.on_message = lambda cl, u, m: self.got.append(json.loads(m.payload))
        c.reconnect_delay_set(0.1, 0.5)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self.ready.wait(5)

    def wait_for(self, n: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.time() + timeout
        while len({m["messageid"] for m in self.got}) < n and time.time() < deadline:
            time.sleep(0.05)
        return self.got

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


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
def test_mqtt_exact_messages_and_a_broker_restart(tmp_path):
    broker = Mosquitto(str(tmp_path)).start()
    sub = Subscriber(broker.port, "events")
    try:
        p = event_pipeline({"url": f"mqtt://127.0.0.1:{broker.port}/events", "outbox": str(tmp_path / "o.db")},
                           frames=60, live=True)
        msgs = []
        p.bus.add_watch(lambda m: msgs.append(m))
        p.start()
        time.sleep(0.8)
        broker.stop()                                         # the broker goes away mid-run ...
        time.sleep(1.0)
        broker.start()                                        # ... and comes back
        p.wait()
        p.stop()
        got = sub.wait_for(120)
        assert object_ids(got) == sorted(f * 10 + k for f in range(60) for k in range(2))   # none lost
        # at-least-once: a message may arrive twice around the outage, always with the same messageid
        assert len({m["messageid"] for m in got}) == 120
        c = p["broker"].counters
        assert c["acknowledged"] >= 120 and c["queued"] == 0 and c["dropped"] == 0
        assert p["src"].stats["frames"] == 60 and not [m for m in msgs if m.type.value == "error"]
    finally:
        sub.close()
        broker.stop()


@needs_mosquitto
def test_mqtt_down_at_start_then_up_and_a_next_run_sends_what_was_left(tmp_path):
    port = free_port()
    box = str(tmp_path / "o.db")
    warnings = []
    p = event_pipeline({"url": f"mqtt://127.0.0.1:{port}/events", "outbox": box, "flush_timeout": 0.2}, frames=20)
    p.bus.add_watch(lambda m: warnings.append(m.text) if m.type.value == "warning" else None)
    p.run()                                                   # the broker never came: the pipeline still ran
    assert any(f"cannot reach mqtt://127.0.0.1:{port}/events" in w for w in warnings)
    assert len(Outbox(box)) == 40                             # all kept on disk
    broker = Mosquitto(str(tmp_path), port=port).start()
    sub = Subscriber(port, "events")
    try:
        p2 = event_pipeline({"url": f"mqtt://127.0.0.1:{port}/events", "outbox": box}, frames=0)
        p2.run()                                              # a next run with nothing new sends the 40 at once
        got = sub.wait_for(40)
        assert object_ids(got) == sorted(f * 10 + k for f in range(20) for k in range(2))
        assert len(Outbox(box)) == 0
    finally:
        sub.close()
        broker.stop()


@needs_mosquitto
def test_mqtt_refused_login_is_one_clear_error(tmp_path):
    broker = Mosquitto(str(tmp_path), users={"cam": "secret"}).start()
    try:
        errors = []
        p = event_pipeline({"url": f"mqtt://cam:wrong@127.0.0.1:{broker.port}/events", "outbox": str(tmp_path / "o.db"),
                            "flush_timeout": 0.1, "retry_max": 0.2}, frames=5)
        p.bus.add_watch(lambda m: errors.append(m.text) if m.type.value == "error" else None)
        with pytest.raises(Exception, match="refused the connection"):
            p.run()
        assert len(errors) == 1 and "check username/password" in errors[0]
        p = event_pipeline({"url": f"mqtt://cam:secret@127.0.0.1:{broker.port}/events",    # the right password works
                            "outbox": str(tmp_path / "o.db")}, frames=5)
        p.run()
        assert p["broker"].counters["acknowledged"] >= 10
    finally:
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
def test_redis_streams_get_every_message(tmp_path):
    import redis
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        event_pipeline({"proto_lib": "/opt/nvidia/deepstream/lib/libnvds_redis_proto.so", "conn_str": f"127.0.0.1;{port}",
                        "topic": "events", "outbox": str(tmp_path / "o.db")}, frames=25).run()
        entries = redis.Redis(port=port).xrange("events")
        payloads = [json.loads(fields[b"payload"]) for _, fields in entries]
        assert all(fields[b"id"].decode() == json.loads(fields[b"payload"])["messageid"] for _, fields in entries)
        assert object_ids(payloads) == sorted(f * 10 + k for f in range(25) for k in range(2))
        assert len({fields[b"id"] for _, fields in entries}) == 50
    finally:
        proc.terminate()
        proc.wait(10)


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


KILLED_SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from test_messaging import event_pipeline
p = event_pipeline({"url": f"mqtt://127.0.0.1:{sys.argv[1]}/events", "outbox": sys.argv[2]}, frames=100000, live=True)
p.start()
print("running", flush=True)
p.wait()
"""


@needs_mosquitto
def test_killed_process_messages_are_sent_by_the_next_run(tmp_path):
    """kill -9 while the broker is down: what the outbox holds survives, and the next run sends it."""
    import sys
    port = free_port()
    box = str(tmp_path / "o.db")
    child = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT, str(port), box, os.path.dirname(__file__)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "running"
    time.sleep(1.5)
    child.kill()
    child.wait()
    left = Outbox(box)
    queued = [json.loads(q.data)["object"]["id"] for q in left.peek(100000)]
    left.close()
    assert len(queued) >= 20
    broker = Mosquitto(str(tmp_path), port=port).start()
    sub = Subscriber(port, "events")
    try:
        event_pipeline({"url": f"mqtt://127.0.0.1:{port}/events", "outbox": box}, frames=0).run()
        got = sub.wait_for(len(queued))
        assert sorted(m["object"]["id"] for m in {m["messageid"]: m for m in got}.values()) == sorted(queued)
        assert len(Outbox(box)) == 0
    finally:
        sub.close()
        broker.stop()


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
