"""`vidpipe bench --suite messaging`: what sending events costs, adapter by adapter, against real
brokers started here (vidpipe.bench.brokers).

1. Rate and latency: 4 streams (videotestsrc) -> streammux -> a probe attaching 10 events per
   frame -> msgconv (full schema) -> msgbroker -> the broker -> a real consumer. Rate: frames as
   fast as they come, messages per second from start to the consumer holding every message.
   Latency: paced at 200 events/s (4 live streams at 5 fps), from the event's @timestamp (made by
   msgconv, ms resolution) to its arrival at the consumer, median and p95. Checked: the consumer
   got exactly the expected event ids.
2. Overhead: 4 copies of the pets clip (people in every frame; else the default clip) -> infer (the default detector, CPU) -> [msgconv with
   an event per object per frame -> msgbroker to MQTT] -> fakesink, messaging on and off,
   alternated, best of each; FPS until the pipeline's last frame. No consumer runs (it would take
   CPU from the pipeline on the same machine). Checked: the same objects per frame both ways, and
   the broker acknowledged every message generated.
3. Outage: a live source making 100 events/s; the broker (MQTT) stops for --outage seconds and
   comes back. Checked: 0 lost. Reported: peak RSS of the process, peak outbox size on disk, time
   to drain.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from datetime import datetime

PER_FRAME = 10


def _events_pipeline(url: str, box: str, streams: int, frames: int, live: bool = False, fps: float = 25.0):
    from .. import make_element
    from ..core.pipeline import Pipeline
    from ..messaging import attach_event
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=streams, batched_push_timeout=40000, live_source=live)
    conv = make_element("msgconv", "conv", payload_type=0)
    broker = make_element("msgbroker", "broker", url=url, outbox=box, retry_max=0.5, flush_timeout=60)
    for i in range(streams):
        s = make_element("videotestsrc", f"s{i}", num_buffers=frames, width=64, height=48, is_live=live,
                         framerate=fps, counter=False)
        p.add(s)
        s.link(mux)
    p.link(mux, conv, broker)

    def probe(pad, batch):
        for f in batch.frames:
            for k in range(PER_FRAME):
                attach_event(f, type="moving", object_type="person", object_id=(f.source_id * 100_000 + f.frame_num)
                             * PER_FRAME + k, label="person", bbox=(1, 2, 30, 40), confidence=0.9)
    mux.src_pad.add_probe(probe)
    return p


def _ts(payload: dict) -> float:
    return datetime.fromisoformat(payload["@timestamp"].replace("Z", "+00:00")).timestamp()


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _box_mb(box: str) -> float:
    return sum(os.path.getsize(box + ext) for ext in ("", "-wal", "-shm") if os.path.exists(box + ext)) / 1e6


def _deliver(broker, cons, folder: str, streams: int, frames: int, live: bool, fps: float,
             wrong: list[str], what: str) -> tuple[float, list[float], int]:
    """Runs the events pipeline into `broker`; (seconds from start to the last arrival, latencies
    in ms, duplicates). Checks the consumer got exactly the expected events."""
    n0 = len(cons.got)
    n = streams * frames * PER_FRAME
    p = _events_pipeline(broker.url("events"), os.path.join(folder, f"{what}.db"), streams, frames, live, fps)
    t0 = time.time()
    p.run()
    cons.wait_for(n0 + n, timeout=120)
    got, stamps = cons.got[n0:], cons.stamps[n0:]
    payloads = [json.loads(b) for b in got]
    ids = sorted({int(m["object"]["id"]) for m in payloads})
    expect = sorted((s * 100_000 + f) * PER_FRAME + k for s in range(streams) for f in range(frames)
                    for k in range(PER_FRAME))
    if ids != expect:
        wrong.append(f"{broker.kind} {what}: the consumer got {len(ids)} distinct events, expected {len(expect)}")
    lat = sorted(1000 * (st - _ts(m)) for st, m in zip(stamps, payloads))
    return (stamps[-1] if stamps else time.time()) - t0, lat, len(got) - len(ids)


def rate(kind: str, tmp: str, streams: int, frames: int, wrong: list[str]) -> dict:
    """As fast as it goes (rate), then paced at 4 streams x 5 fps x 10 events = 200/s (latency)."""
    from .brokers import BROKERS
    cls = BROKERS[kind]
    if not cls.available():
        print(f"  {kind}: skipped ({cls.binary or 'tansu'} not installed)", flush=True)
        return {}
    folder = tempfile.mkdtemp(dir=tmp)
    broker = cls(folder).start()
    cons = broker.consumer("events")
    try:
        n = streams * frames * PER_FRAME
        elapsed, _, dup = _deliver(broker, cons, folder, streams, frames, False, 25.0, wrong, "burst")
        _, lat, dup2 = _deliver(broker, cons, folder, 4, 25, True, 5.0, wrong, "paced")
        row = {"adapter": kind, "messages": n, "msgs_per_s": n / elapsed, "latency_ms_median": statistics.median(lat),
               "latency_ms_p95": lat[int(0.95 * (len(lat) - 1))], "duplicates": dup + dup2}
        print(f"  {kind:6s} {row['msgs_per_s']:8.0f} msg/s   at 200 msg/s: latency median {row['latency_ms_median']:6.1f} "
              f"ms, p95 {row['latency_ms_p95']:6.1f} ms   ({n} + 1000 messages, {row['duplicates']} duplicates)",
              flush=True)
        return row
    finally:
        cons.close()
        getattr(broker, "close", broker.stop)()


def overhead(tmp: str, streams: int, frames: int, wrong: list[str]) -> dict:
    from .. import assets, make_element
    from .brokers import Mosquitto
    from .pipelines import detect_pipeline
    if not Mosquitto.available():
        print("  overhead: skipped (mosquitto not installed)", flush=True)
        return {}
    broker = Mosquitto(tempfile.mkdtemp(dir=tmp)).start()   # no consumer here: it would compete for the CPU
    from . import _resolve_clip
    try:
        clip = _resolve_clip("pets")          # people in every frame: many events
    except Exception:  # noqa: BLE001 - no shared media here
        clip = assets.default_clip()
    uris = [clip] * streams
    fps = {False: [], True: []}
    ref = None
    sent, acked, drain = 0, 0, 0.0
    try:
        for rnd in range(2):
            for on in (False, True):
                box = os.path.join(tmp, f"ov-{rnd}.db")
                extra = (make_element("msgconv", "conv", payload_type=0, frame_interval=1),
                         make_element("msgbroker", "broker", url=broker.url("events"), outbox=box, flush_timeout=60)) \
                    if on else ()
                p, counts, last = detect_pipeline(uris, frames=frames, extra=extra)
                t0 = time.perf_counter()
                p.run()             # the pipeline's throughput: until its last frame (the outbox drains after)
                fps[on].append(len(counts) / (last[0] - t0))
                drain = max(drain, time.perf_counter() - last[0]) if on else drain
                if on:
                    sent += p["conv"].generated
                    acked += p["broker"].counters["acknowledged"]
                got = sorted(counts)
                if ref is None:
                    ref = got
                elif got != ref:
                    wrong.append(f"overhead: objects per frame differ with messaging {'on' if on else 'off'}")
        if acked != sent:
            wrong.append(f"overhead: the broker acknowledged {acked} of {sent} messages")
    finally:
        broker.stop()
    off, on = max(fps[False]), max(fps[True])
    objects = sum(c[2] for c in ref or []) / max(1, len(ref or []))
    print(f"  {streams} streams x {frames} frames of {os.path.basename(uris[0])}, default detector on the CPU, "
          f"{objects:.1f} objects/frame: "
          f"off {off:.1f} FPS, on {on:.1f} FPS ({100 * (off - on) / off:+.1f}% slower; {sent} messages, all "
          f"acknowledged at most {drain:.2f} s after the last frame)", flush=True)
    return {"streams": streams, "fps_off": off, "fps_on": on, "slower_pct": 100 * (off - on) / off,
            "messages": sent, "drain_s": drain}


def outage(tmp: str, seconds: float, wrong: list[str]) -> dict:
    from .brokers import Mosquitto
    if not Mosquitto.available():
        return {}
    folder = tempfile.mkdtemp(dir=tmp)
    broker = Mosquitto(folder).start()
    cons = broker.consumer("events")
    box = os.path.join(folder, "o.db")
    frames = int((seconds + 10) * 10)                         # 10 fps x 10 events = 100 events/s
    p = _events_pipeline(broker.url("events"), box, 1, frames, live=True, fps=10)
    peak = {"rss": _rss_mb(), "box": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            peak["rss"] = max(peak["rss"], _rss_mb())
            peak["box"] = max(peak["box"], _box_mb(box))
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        rss0 = _rss_mb()
        p.start()
        time.sleep(5)
        broker.stop()
        time.sleep(seconds)
        queued = p["broker"].counters["queued"]
        broker.start()
        t_up = time.time()
        while p["broker"].counters["queued"] > PER_FRAME and time.time() < t_up + 120:
            time.sleep(0.02)
        drained = time.time() - t_up
        p.wait()
        n = frames * PER_FRAME
        got = cons.wait_for(n, timeout=120)
        p.stop()
        ids = {json.loads(b)["object"]["id"] for b in got}
        if len(ids) != n:
            wrong.append(f"outage: {n - len(ids)} of {n} events lost")
    finally:
        stop.set()
        t.join()
        cons.close()
        broker.stop()
    print(f"  {seconds:.0f} s outage at 100 events/s: {queued} queued at the end of it, {n - len(ids)} lost; peak RSS "
          f"{peak['rss']:.0f} MB (at start {rss0:.0f} MB), peak outbox {peak['box']:.1f} MB on disk; all delivered "
          f"{drained:.1f} s after the broker came back (the outbox back to under one frame's events)", flush=True)
    return {"outage_s": seconds, "queued": queued, "lost": n - len(ids), "peak_rss_mb": peak["rss"],
            "start_rss_mb": rss0, "peak_outbox_mb": peak["box"], "drain_s": drained}


def main_messaging(args: argparse.Namespace) -> int:
    from . import finish, machine
    wrong: list[str] = []
    streams = 4 if args.streams == "1,4" else int(args.streams.split(",")[0])
    print(f"machine: {machine()}", flush=True)
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="vidpipe-msg-") as tmp:
        print(f"rate: {streams} streams x {args.frames} frames x {PER_FRAME} events, full schema, one message each",
              flush=True)
        out["rate"] = [r for r in (rate(k, tmp, streams, args.frames, wrong) for k in
                                   ("mqtt", "redis", "amqp", "nats", "kafka")) if r]
        print("overhead on the pipeline (MQTT):", flush=True)
        out["overhead"] = overhead(tmp, streams, min(args.frames, 250), wrong)
        print("outage (MQTT):", flush=True)
        out["outage"] = outage(tmp, args.outage, wrong)
    out["peak_rss_process_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return finish(wrong)
