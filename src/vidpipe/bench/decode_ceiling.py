"""Where the decode ceiling comes from (`vidpipe bench --device cuda --profile`, last table).

Two questions, measured on the bench clip:
- Is NVDEC-only throughput the decoders' limit? nvidia-smi's decoder utilisation is sampled
  (`nvidia-smi dmon -s u`, once a second) while N threads decode as fast as they can.
- How do the pipeline's other Python threads slow decoding? PyNvVideoCodec's Decode() gives the
  GIL back and takes it again during a call, so a decoding thread waits for the GIL whenever
  another thread runs Python. One decoder thread (and 16) decode alone, then beside one thread
  running pure Python, at the interpreter's default switch interval (5 ms: how long a waiting
  thread lets the running one go on) and at 0.5 ms.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import threading

from .gpu import nvdec_only


def decoder_utilisation(clip: str, streams: int, frames: int) -> dict:
    """NVDEC-only FPS and the decoder utilisation (%) nvidia-smi reports meanwhile."""
    try:
        mon = subprocess.Popen(["nvidia-smi", "dmon", "-s", "u", "-d", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    except OSError:
        mon = None
    fps = nvdec_only(clip, streams, frames)
    util: list[float] = []
    if mon is not None:
        mon.terminate()
        out = mon.communicate(timeout=5)[0]
        cols: list[str] = []
        for line in out.splitlines():
            if line.startswith("# gpu"):
                cols = line[1:].split()
            elif cols and line.strip() and not line.startswith("#"):
                vals = line.split()
                if "dec" in cols and len(vals) == len(cols) and vals[cols.index("dec")].isdigit():
                    util.append(float(vals[cols.index("dec")]))
    busy = [u for u in util if u > 0]  # the first and last seconds straddle start-up and the end
    return {"streams": streams, "fps": round(fps), "decoder_util_samples": util,
            "decoder_util_median": statistics.median(busy) if busy else None}


def gil_wait(clip: str, streams: int, frames: int) -> dict:
    """Decoder FPS alone and beside a pure-Python thread, at two switch intervals."""
    out = {"streams": streams, "alone": round(nvdec_only(clip, streams, frames))}
    default = sys.getswitchinterval()
    for interval in (default, 0.0005):
        stop = threading.Event()

        def spin(stop: threading.Event = stop) -> None:
            n = 0
            while not stop.is_set():
                n += 1
        sys.setswitchinterval(interval)
        t = threading.Thread(target=spin, daemon=True)
        try:
            t.start()
            out[f"beside_python_{interval * 1e3:g}ms"] = round(nvdec_only(clip, streams, frames))
        finally:
            stop.set()
            t.join()
            sys.setswitchinterval(default)
    return out


def run(clip: str) -> dict:
    res = {"utilisation": [decoder_utilisation(clip, n, 600) for n in (1, 16)],
           "gil": [gil_wait(clip, n, 300 if n == 1 else 150) for n in (1, 16)]}
    print("decode ceiling: NVDEC-only FPS and nvidia-smi decoder utilisation (median %); decoders beside a "
          "Python thread at two switch intervals", flush=True)
    for u in res["utilisation"]:
        print(f"  {u['streams']:>2} threads: {u['fps']:>5} FPS, decoder utilisation {u['decoder_util_median']} "
              f"(samples {u['decoder_util_samples']})", flush=True)
    for g in res["gil"]:
        print("  " + ", ".join(f"{k} {v}" for k, v in g.items()), flush=True)
    return res
