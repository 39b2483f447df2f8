"""`vidpipe bench --suite record`: what smart record costs, and how fast a clip is on disk.

1. Cache cost: one 1080p H.264 stream (about 6 Mbit/s) decoded with smart record on and a 10 s
   cache: bytes the cache holds against bitrate x cache seconds, and the CPU time spent caching
   per packet and as a share of the stream's decoding time.
2. Throughput: N streams (default 16, 480p) -> streammux -> fakesink, smart record off and on
   (cache 10 s, no clip written), alternated; FPS each way. The outputs are compared: both runs
   must deliver every frame.
3. Trigger-to-file latency: 20 clips of 1 s cut from one stream; time from the source delivering
   the frame at the clip's end to the file being finalised, median and p95.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def _pipeline(uris: list[str], record: bool, folder: str):
    from .. import make_element
    from ..core.pipeline import Pipeline
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=len(uris))
    sink = make_element("fakesink", "sink")
    p.add(mux, sink)
    for i, u in enumerate(uris):
        s = make_element("urisrc", f"s{i}", uri=u, **({"smart_record": 1, "smart_rec_cache": 10,
                                                        "smart_rec_dir_path": folder} if record else {}))
        p.add(s)
        s.link(mux)
    p.link(mux, sink)
    return p


def _fps(p) -> tuple[float, int]:
    n = [0]
    p["sink"].sink_pad.add_probe(lambda pad, b: n.__setitem__(0, n[0] + len(b.frames)))
    t0 = time.perf_counter()
    p.run()
    return n[0] / (time.perf_counter() - t0), n[0]


def main_record(args: argparse.Namespace) -> int:
    from ..synthetic import make_clip
    from . import finish, machine
    from .gpu import make_bench_clip
    wrong: list[str] = []
    streams = int(args.streams) if args.streams != "1,4" else 16
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vidpipe-record-") as tmp:
        hd = make_bench_clip(os.path.join(tmp, "hd.mp4"), frames=450, bitrate=6_000_000)   # 15 s, 1080p30
        bitrate = os.path.getsize(hd) * 8 / 15.0
        p = _pipeline([hd], True, tmp)
        seen: dict = {}
        src = p["s0"]
        decode_t0 = time.process_time()
        src.src_pad.add_probe(lambda pad, b: seen.update(bytes=src.recorder.cache.bytes,
                                                         span=src.recorder.cache.items[-1].td - src.recorder.cache.items[0].td)
                              if b.frames[0].frame_num == 440 else None)
        _, n1 = _fps(p)
        cpu = time.process_time() - decode_t0
        rec = src.recorder
        per_packet_us = 1e6 * rec.push_s / max(n1, 1)
        expect = bitrate / 8 * 10
        print(f"cache, one 1080p stream ({bitrate / 1e6:.1f} Mbit/s), 10 s: holds {seen['bytes'] / 1e6:.2f} MB over "
              f"{seen['span']:.2f} s (bitrate x 10 s = {expect / 1e6:.2f} MB); caching {per_packet_us:.1f} us per "
              f"packet = {100 * rec.push_s / cpu:.2f}% of the process CPU time", flush=True)
        small = os.path.join(tmp, "s.mp4")
        make_clip(small, frames=300, width=854, height=480, fps=30)
        uris = [small] * streams
        runs = {False: [], True: []}
        for _ in range(2):
            for record in (False, True):
                fps, n = _fps(_pipeline(uris, record, tmp))
                runs[record].append(fps)
                if n != streams * 300:
                    wrong.append(f"smart record {'on' if record else 'off'}: {n} frames, expected {streams * 300}")
        off, on = max(runs[False]), max(runs[True])
        print(f"{streams} x 480p streams: {off:.0f} FPS without smart record, {on:.0f} with "
              f"({100 * (on / off - 1):+.1f}%)", flush=True)
        p = _pipeline([hd], True, tmp)
        p["s0"].smart_rec_cache = 3

        def trigger(pad, b):
            f = b.frames[0]
            if f.frame_num % 20 == 0 and 30 <= f.frame_num <= 420:
                p.smart_record.start(0, start_before=0.5, duration=0.5)
        p["s0"].src_pad.add_probe(trigger)
        done: list = []
        p.smart_record.on_done.append(done.append)
        p.run()
        lat = sorted(1e3 * d.latency_s for d in done if d.latency_s is not None)
        if not lat:
            wrong.append("no clip finished on its own")
        else:
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(f"trigger-to-file: {len(lat)} clips, end frame delivered -> file finalised: median "
                  f"{statistics.median(lat):.2f} ms, p95 {p95:.2f} ms", flush=True)
    return finish(wrong)
