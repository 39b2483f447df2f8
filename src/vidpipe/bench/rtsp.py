"""`vidpipe bench --suite rtsp`: RTSP server CPU per client and glass-to-client latency.

A synthetic 640x360 25 fps clip, read as a live source (real-time pace), loops through streammux -> a probe that writes the frame number
into the pixels (a 16-bit block code) and notes the time -> x264 (zerolatency) -> rtspsink. One
measuring client (PyAV, another process) decodes the stream and reads the code back: latency =
decode time - production time (same clock). The other clients are raw RTSP/TCP receivers in one
more process (they read RTP without decoding, so their own cost does not load the server's core).
Server CPU per client = (pipeline CPU with N clients - with none) / N.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

BITS, BLOCK = 16, 8


def stamp(img: np.ndarray, n: int) -> None:
    for b in range(BITS):
        img[0:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 255 if (n >> b) & 1 else 0


def read_stamp(img: np.ndarray) -> int:
    row = img[BLOCK // 2, BLOCK // 2::BLOCK, 1][:BITS]
    return int(sum(1 << b for b, v in enumerate(row) if v > 128))


def measure_client(url: str, seconds: float) -> None:
    """Runs in its own process: prints one JSON line per decoded frame (frame number, time)."""
    import av
    end = time.time() + seconds
    with av.open(url, options={"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay"}, timeout=10) as c:
        c.streams.video[0].thread_type = "SLICE"
        for f in c.decode(video=0):
            now = time.time()
            print(json.dumps([read_stamp(f.to_ndarray(format="rgb24")), now]), flush=True)
            if now > end:
                break


def load_clients(url: str, n: int, seconds: float) -> None:
    """Runs in its own process: n raw RTSP clients over TCP that read everything sent."""
    import asyncio
    from urllib.parse import urlparse

    u = urlparse(url)

    async def one(i: int) -> int:
        r, w = await asyncio.open_connection(u.hostname, u.port)
        w.write(f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n".encode())
        head = await r.readuntil(b"\r\n\r\n")
        sid = [ln.split(b":", 1)[1].strip().split(b";")[0] for ln in head.split(b"\r\n") if ln.lower().startswith(b"session:")][0]
        w.write(f"PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {sid.decode()}\r\n\r\n".encode())
        got = 0
        end = time.time() + seconds
        while time.time() < end:
            try:
                chunk = await asyncio.wait_for(r.read(65536), 1.0)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                break
            got += len(chunk)
        w.close()
        return got

    async def main() -> None:
        res = await asyncio.gather(*(one(i) for i in range(n)))
        print(json.dumps({"clients": n, "bytes": res}), flush=True)
    asyncio.run(main())


def run(clients_list=(1, 10, 50), seconds: float = 8.0) -> list[dict]:
    import vidpipe
    from ..synthetic import make_clip

    tmp = tempfile.mkdtemp(prefix="vidpipe-rtspbench-")
    clip = os.path.join(tmp, "clip.mp4")
    make_clip(clip, frames=100, width=640, height=360, fps=25)
    produced: dict[int, float] = {}
    counter = [0]

    def probe(pad, batch):
        for f in batch.frames:
            n = counter[0] & 0xFFFF
            counter[0] += 1
            stamp(f.image, n)
            produced[n] = time.time()
    p = vidpipe.parse_launch(f"urisrc uri={clip} file-loop=1 live=1 ! streammux ! identity name=tap ! encoder tune=zerolatency "
                             "iframeinterval=25 bitrate=2000000 ! rtspsink name=out port=0 bitrate=2000000 sync=0")
    p["tap"].src_pad.add_probe(probe)
    p.start()
    url = p["out"].url.replace("localhost", "127.0.0.1")
    time.sleep(1.0)
    rows = []
    try:
        def cpu_over(secs: float) -> float:
            t0, c0 = time.monotonic(), sum(os.times()[:2])
            time.sleep(secs)
            return (sum(os.times()[:2]) - c0) / (time.monotonic() - t0)
        base = cpu_over(seconds / 2)
        for n in clients_list:
            load = subprocess.Popen([sys.executable, "-c", f"from vidpipe.bench.rtsp import load_clients; load_clients({url!r}, {n - 1}, {seconds + 3})"],
                                    stdout=subprocess.PIPE, text=True) if n > 1 else None
            meas = subprocess.Popen([sys.executable, "-c", f"from vidpipe.bench.rtsp import measure_client; measure_client({url!r}, {seconds + 2})"],
                                    stdout=subprocess.PIPE, text=True)
            time.sleep(1.5)
            cpu = cpu_over(seconds)
            out, _ = meas.communicate(timeout=60)
            lat = []
            for line in out.splitlines():
                k, t = json.loads(line)
                if k in produced:
                    lat.append((t - produced[k]) * 1000)
            lat = lat[10:]  # skip the start (joins at a keyframe, buffers fill)
            if load is not None:
                lo, _ = load.communicate(timeout=60)
                received = json.loads(lo.strip().splitlines()[-1])["bytes"] if lo.strip() else []
                starved = sum(b == 0 for b in received)
                kbit = round(8 * float(np.mean(received)) / (seconds + 3) / 1000, 1) if received else None
            else:
                starved, kbit = 0, None
            rows.append({"clients": n, "server_cpu_per_client_pct": round(100 * (cpu - base) / n, 2),
                         "pipeline_cpu_pct": round(100 * cpu, 1), "baseline_cpu_pct": round(100 * base, 1),
                         "latency_ms_median": round(float(np.median(lat)), 1) if lat else None,
                         "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat else None,
                         "frames_measured": len(lat), "load_clients_without_data": starved,
                         "kbit_per_s_per_load_client": kbit})
    finally:
        p.stop()
    return rows
