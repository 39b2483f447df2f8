"""GPU probe for issue 6 (run on the device machine by benchmarks/gpu/probe.sh).

Measures what the GPU pipeline will be built on: PyNvVideoCodec (NVDEC) decode of a 1080p H.264
stream into torch through DLPack, and NanoDet-m converted from ONNX to torch (onnx2torch) in
fp32/fp16 at several batch sizes, checked against onnxruntime on the CPU. Writes $OUT/probe.json.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback

import numpy as np

OUT = os.environ.get("OUT", "/tmp")
DATA = sys.argv[1] if len(sys.argv) > 1 else ".devdata"
res: dict = {}


def step(name):
    def deco(fn):
        t0 = time.time()
        try:
            res[name] = fn()
        except Exception as e:  # a probe: record and go on
            res[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]}
        print(f"== {name} ({time.time() - t0:.1f}s): {json.dumps(res[name], default=str)[:800]}", flush=True)
        return fn
    return deco


@step("env")
def env():
    import torch
    return {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0), "cpus": os.cpu_count()}


def nvdec_decode(path, limit=None):
    import PyNvVideoCodec as nvc
    import torch
    demux = nvc.CreateDemuxer(filename=path)
    dec = nvc.CreateDecoder(gpuid=0, codec=demux.GetNvCodecId(), cudacontext=0, cudastream=0, usedevicememory=True)
    n, first = 0, None
    for packet in demux:
        for frame in dec.Decode(packet):
            if first is None:
                t = torch.from_dlpack(frame)
                first = (tuple(t.shape), str(t.dtype), str(t.device))
            n += 1
    torch.cuda.synchronize()
    return n, first


@step("nvdec")
def nvdec():
    import PyNvVideoCodec as nvc
    path = os.path.join(DATA, "clip1080.h264")
    info = {"version": getattr(nvc, "__version__", "?"), "api": [a for a in dir(nvc) if not a.startswith("_")][:60]}
    nvdec_decode(path)  # warm-up
    t0 = time.perf_counter()
    n, first = nvdec_decode(path)
    info["one_stream_fps"] = round(n / (time.perf_counter() - t0), 1)
    info["frames"], info["first_frame"] = n, first
    for k in (4, 16):
        counts = [0] * k
        def work(i):
            counts[i] = nvdec_decode(path)[0]
        ts = [threading.Thread(target=work, args=(i,)) for i in range(k)]
        t0 = time.perf_counter()
        [t.start() for t in ts]
        [t.join() for t in ts]
        info[f"{k}_streams_aggregate_fps"] = round(sum(counts) / (time.perf_counter() - t0), 1)
    return info


@step("nanodet_torch")
def nanodet():
    import onnx
    import onnxruntime as ort
    import torch
    from onnx2torch import convert
    path = os.path.join(DATA, "nanodet_m416.onnx")
    model = convert(onnx.load(path)).eval().cuda()
    x = np.random.default_rng(0).standard_normal((1, 3, 416, 416)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        out = model(torch.from_numpy(x).cuda())
    out = out if isinstance(out, (list, tuple)) else [out]
    errs = [float(np.linalg.norm(o.float().cpu().numpy() - r) / (np.linalg.norm(r) + 1e-12)) for o, r in zip(out, ref)]
    info = {"outputs": [tuple(o.shape) for o in out], "rel_err_vs_onnxruntime": [round(e, 6) for e in errs]}
    for dtype in (torch.float32, torch.float16):
        m = model.to(dtype)
        for b in (1, 16, 64):
            xb = torch.randn(b, 3, 416, 416, device="cuda", dtype=dtype)
            try:
                with torch.no_grad():
                    for _ in range(3):
                        m(xb)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    reps = 20
                    for _ in range(reps):
                        m(xb)
                    torch.cuda.synchronize()
                info[f"{str(dtype)[6:]}_batch{b}_img_per_s"] = round(b * reps / (time.perf_counter() - t0), 1)
            except Exception as e:
                info[f"{str(dtype)[6:]}_batch{b}"] = f"{type(e).__name__}: {e}"[:300]
    return info


with open(os.path.join(OUT, "probe.json"), "w") as fh:
    json.dump(res, fh, indent=2, default=str)
print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk not in ("trace", "api")} if isinstance(v, dict) else v
                  for k, v in res.items()}, default=str, indent=1))
