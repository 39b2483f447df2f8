"""`vidpipe bench --suite service`: what watching a pipeline costs.

1. Console latency: 4 live streams (the pets clip, 10 fps, looped) -> infer (default detector)
   -> fakesink, served with the console open in headless Chromium. Glass to browser: from the
   source making a frame to the browser having decoded and drawn it on its canvas (the page
   compares each part's X-Capture-Time with its clock; same machine, same clock). Median and p95
   over 20 s, beside the server-side latency (source to the console's tap).
2. Server CPU with 0, 1 and 10 viewers: CPU time of the pipeline's process per second of wall
   time over 15 s, with the pipeline's FPS beside it. 10 viewers twice: 1 Chromium page and 9
   curl readers of the same 4 streams (the server's cost alone), then 10 Chromium pages (on a
   small machine the browsers themselves take the CPU). JPEGs are made once per frame for all.
3. Overhead: 4 copies of the pets clip -> infer -> fakesink as fast as the CPU goes, with the
   service on (/metrics scraped every second and one viewer: curl reading the 4 MJPEG streams)
   and off, alternated, 3 rounds (--repeat for more), best of each. Checked: the same objects per frame both ways.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
import time

from .pipelines import detect_pipeline


def _cpu(seconds: float) -> float:
    """CPU seconds of this process per wall second, over `seconds`."""
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def _curl_views(url: str, pages: int) -> list[subprocess.Popen]:
    """`pages` viewers that only read: each the 4 MJPEG streams a console page opens (as it
    opens them: boxes beside the frames, for the page to draw)."""
    return [subprocess.Popen(["curl", "-s", "-N", "-o", os.devnull, f"{url}/video/{i}.mjpg?boxes=json"])
            for _ in range(pages) for i in range(4)]


def console(clip: str, wrong: list[str]) -> dict:
    from .browser import launch
    p, _, _ = detect_pipeline([clip] * 4, live=True)
    p.start()
    svc = p.serve("127.0.0.1:0")
    mon = svc.monitor
    rows: dict = {}
    drivers: list = []
    curls: list = []

    def measure(name: str) -> None:
        n0 = mon.encoded
        cpu = _cpu(15)
        fps = sum(mon.stream_stats(s)["fps"] for s in range(4))
        rows[name] = {"cpu_cores": cpu, "pipeline_fps": fps, "jpegs_per_s": (mon.encoded - n0) / 15,
                      "views": sum(mon.viewers.values())}
        print(f"  {name:28s} process CPU {cpu:.2f} cores, pipeline {fps:.1f} FPS (4 x 10 fps live), "
              f"{rows[name]['views']} live views, {rows[name]['jpegs_per_s']:.0f} JPEG/s", flush=True)
    try:
        time.sleep(3)
        measure("0 viewers")
        if mon.encoded:
            wrong.append(f"console: {mon.encoded} JPEGs made with nobody watching")
        d = launch()
        drivers.append(d)
        d.get(f"{svc.url}/")
        time.sleep(8)                                        # warm up, then measure
        d.execute_script("for (const v of Object.values(window.vidpipe.views)) v.latencies.length = 0")
        measure("1 viewer (Chromium)")
        lat = sorted(x for v in d.execute_script("return Object.values(window.vidpipe.views).map(v => v.latencies)")
                     for x in v)
        server = [mon.stream_stats(s) for s in range(4)]
        if len(lat) < 100:
            wrong.append(f"console: only {len(lat)} frames reached the browser in 15 s")
        curls = _curl_views(svc.url, 9)
        time.sleep(3)
        measure("10 viewers (1 Chromium, 9 curl)")
        for c in curls:
            c.terminate()
            c.wait()
        curls = []
        for _ in range(9):
            t = launch()
            drivers.append(t)
            t.get(f"{svc.url}/")
        time.sleep(8)
        measure("10 viewers (Chromium)")
        views = sum(t.execute_script("return Object.keys(window.vidpipe.views).length") for t in drivers)
        if views != 40:
            wrong.append(f"console: 10 viewers x 4 streams should be 40 live views, the pages have {views}")
        out = {"latency_ms_median": statistics.median(lat) if lat else None,
               "latency_ms_p95": lat[int(0.95 * (len(lat) - 1))] if lat else None, "frames": len(lat),
               "server_latency_ms_median": statistics.median(s["latency_ms"] or 0 for s in server), "cpu": rows}
        print(f"  glass to browser at 4 streams: median {out['latency_ms_median']:.0f} ms, p95 "
              f"{out['latency_ms_p95']:.0f} ms over {len(lat)} frames (source to tap on the server: "
              f"{out['server_latency_ms_median']:.0f} ms)", flush=True)
    finally:
        for c in curls:
            c.terminate()
        for t in drivers:
            t.quit()
        p.stop()
    return out


def _scrape(url: str, stop: threading.Event, scrapes: list[int]) -> None:
    """GET /metrics every second until `stop` (or the service is gone), counting the scrapes."""
    import urllib.request
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
                r.read()
        except OSError:          # the pipeline ended and its service with it
            return
        scrapes[0] += 1


def overhead(clip: str, frames: int, wrong: list[str], rounds: int = 3) -> dict:
    fps = {False: [], True: []}
    ref = None
    for _ in range(rounds):
        for on in (False, True):
            p, counts, last = detect_pipeline([clip] * 4, frames=frames)
            stop = threading.Event()
            procs: list[subprocess.Popen] = []
            scrapes = [0]
            if on:
                svc = p.serve("127.0.0.1:0")

                threading.Thread(target=_scrape, args=(svc.url, stop, scrapes), daemon=True).start()
                procs = _curl_views(svc.url, 1)
            t0 = time.perf_counter()
            try:
                p.run()
            finally:
                stop.set()
                for pr in procs:
                    pr.terminate()
                    pr.wait()
            fps[on].append(len(counts) / (last[0] - t0))
            got = sorted(counts)
            if ref is None:
                ref = got
            elif got != ref:
                wrong.append(f"overhead: objects per frame differ with the service {'on' if on else 'off'}")
            if on and scrapes[0] < int(last[0] - t0) - 1:
                wrong.append(f"overhead: /metrics was scraped {scrapes[0]} times in {last[0] - t0:.0f} s")
    off, on = max(fps[False]), max(fps[True])
    print(f"  4 streams x {frames} frames, default detector on the CPU: off {off:.1f} FPS, on {on:.1f} FPS "
          f"({100 * (off - on) / off:+.1f}% slower; /metrics every second, 4 MJPEG views)", flush=True)
    return {"fps_off": off, "fps_on": on, "slower_pct": 100 * (off - on) / off}


def main_service(args: argparse.Namespace) -> int:
    from . import _resolve_clip, finish, machine
    from .browser import chromium_paths
    wrong: list[str] = []
    print(f"machine: {machine()}", flush=True)
    clip = _resolve_clip("pets")
    out: dict = {}
    if all(chromium_paths()):
        print("console (headless Chromium):", flush=True)
        out["console"] = console(clip, wrong)
    else:
        print("console: skipped (chromium and chromium-driver are not installed)", flush=True)
    print("overhead on the pipeline:", flush=True)
    out["overhead"] = overhead(clip, min(args.frames, 250), wrong, max(3, args.repeat or 1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return finish(wrong)
