"""`vidpipe bench --device cuda`: the GPU pipeline against what the hardware and a hand-written
program do, measured in the same run on the same clip and model.

For each stream count N (default 1, 4, 16, 32, 64), on a 1080p30 H.264 clip of about 6 Mbit/s:
  nvdec    - NVDEC alone: N threads decoding the clip (PyNvVideoCodec), nothing else
  h265     - the same on an H.265 version of the clip (--clip-h265)
  model    - the model alone at batch N (the same torch backend: fp16, CUDA graph), input ready
  batched  - THE BASELINE: the batched hand-written loop in baseline_gpu.py (decoder thread per
             stream, NV12 batch resized and converted at once, model at batch N, batched NMS)
  per-frame- a per-frame loop: one thread per stream, the model per frame (fp16, batch 1, eager)
  in-proc  - urisrc(device=cuda) x N -> streammux(batch N) -> infer -> tracker -> fakesink, decoding
             in this process (urisrc nvdec-process=0)
  worker   - the same decoding in the worker process (nvdec-process=1)
  vidpipe  - the default (nvdec-process=-1): worker from 16 streams, else in-proc; the figure is
             that column's, and the ratios are the default's
  serial   - the default with infer workers=1 (no overlap of one batch's launch with the last's NMS)
  together - NVDEC and the model at once, no hand-over (nvdec_with_model): min of their two rates,
             about the best any program doing both can expect on this GPU; "vs tog": vidpipe against it
FPS are steady-state (from each side's first finished frame to its last); batched, in-proc and worker
run twice, alternating (--repeat), and the better run counts. Objects per frame are
reported for every side; the run fails (exit 1) when vidpipe's differ from the batched
baseline's by more than 2%. vidpipe's own host copies are counted (bytes per frame, and whole
frames copied: 0 expected); a profiled run lists the CUDA device-to-host copies.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time

import numpy as np

NANODET_INI = """[property]
onnx-file={model}
net-scale-factor=0.017
offsets=103.53;116.28;123.675
model-color-format=1
num-detected-classes=80
network-mode=2
cluster-mode=2
batch-size={batch}
[class-attrs-all]
pre-cluster-threshold={threshold}
nms-iou-threshold=0.6
"""
PROBE_THRESHOLD = 0.15  # the detector's threshold for the probe-cost run: about 45 objects per frame


def write_ini(path: str, model: str, batch: int, threshold: float = 0.4) -> str:
    with open(path, "w") as fh:
        fh.write(NANODET_INI.format(model=model, batch=batch, threshold=threshold))
    return path


def make_bench_clip(path: str, *, source: str | None = None, frames: int = 150, bitrate: int = 6_000_000,
                    width: int = 1920, height: int = 1080, fps: float = 30.0, codec: str = "h264") -> str:
    """A 1080p H.264 stream: a real clip's frames (people walking) scaled up, or moving squares,
    with film grain so the encoder spends about `bitrate` bits per second. Needs PyAV."""
    import cv2

    from ..media.reader import VideoReader
    from ..synthetic import background, default_squares, render, write_video
    rng = np.random.default_rng(0)
    src = iter(VideoReader(source)) if source else None
    squares, bg = default_squares(width, height), background(width, height)

    def images():
        for t in range(frames):
            df = next(src, None) if src is not None else None
            img = cv2.resize(df.image, (width, height), interpolation=cv2.INTER_LINEAR) if df is not None \
                else render(t, width, height, squares, bg)
            grain = rng.normal(0, 4, (height // 2, width // 2, 1)).astype(np.float32)
            yield np.clip(img + cv2.resize(grain, (width, height))[..., None], 0, 255).astype(np.uint8)
    write_video(path, images(), width=width, height=height, fps=fps, bitrate=bitrate, codec=codec)
    return path


def _threads(n: int, fn) -> float:
    """Runs fn(i) in n threads after a common start; returns wall seconds."""
    barrier = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            fn(i)
        except BaseException as e:  # reported after the join
            errors.append(e)
    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    [t.start() for t in ts]
    barrier.wait()
    t0 = time.perf_counter()
    [t.join() for t in ts]
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def nvdec_only(clip: str, streams: int, frames: int) -> float:
    """Steady state: timed from each decoder's first frame (session start-up excluded)."""
    from ..gpu.decode import NvDecReader
    stamps: list[list[float]] = [[] for _ in range(streams)]

    def work(i: int) -> None:
        while len(stamps[i]) < frames:
            r = NvDecReader(clip)
            for _ in r.frames_nv12():
                stamps[i].append(time.perf_counter())
                if len(stamps[i]) >= frames:
                    break
    _threads(streams, work)
    return _steady(stamps)


def beside_model(backend, batch: int, fn):
    """Runs fn() while another thread runs the model at `batch` on its own stream, back to back;
    returns (fn's result, the model's images per second over fn's run)."""
    import torch
    x = torch.randn(batch, 3, 416, 416, device=backend.device).to(backend.dtype)
    backend.run_torch(x)
    torch.cuda.synchronize()
    stop, done = threading.Event(), [0]

    def model() -> None:
        s = torch.cuda.Stream(backend.device)
        with torch.cuda.stream(s):
            while not stop.is_set():
                for _ in range(4):
                    backend.run_torch(x)
                s.synchronize()
                done[0] += 4
    th = threading.Thread(target=model, daemon=True)
    th.start()
    time.sleep(0.2)
    t0, n0 = time.perf_counter(), done[0]
    try:
        out = fn()
    finally:
        n1, t1 = done[0], time.perf_counter()
        stop.set()
        th.join()
    return out, (n1 - n0) * batch / (t1 - t0)


def nvdec_with_model(clip: str, streams: int, frames: int, backend) -> tuple[float, float]:
    """NVDEC and the model at the same time on the same GPU, as a pipeline needs them: N decoding
    threads (as nvdec_only) beside the model at batch N, with no hand-over between them. (NVDEC
    FPS, model FPS): about the best a program doing both can expect, below min(NVDEC alone, model
    alone) as they slow each other down."""
    return beside_model(backend, streams, lambda: nvdec_only(clip, streams, frames))


def model_only(backend, batch: int, seconds: float = 1.5) -> float:
    import torch
    x = torch.randn(batch, 3, 416, 416, device=backend.device).to(backend.dtype)
    for _ in range(3):
        backend.run_torch(x)
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            backend.run_torch(x)
        n += 10
        torch.cuda.synchronize()
    return n * batch / (time.perf_counter() - t0)


def per_frame_loop(clip: str, streams: int, frames: int, module, names: list[str], parser, ctx) -> float:
    """One thread per stream, no batching (the naive program; the baseline is baseline_gpu.py)."""
    import torch
    import torch.nn.functional as F
    from torchvision.ops import batched_nms

    from ..gpu.color import nv12_to_rgb
    from ..gpu.decode import NvDecReader
    from ..infer.parsers.pytorch import candidates
    mean = torch.tensor([103.53, 116.28, 123.675], device="cuda").view(1, 3, 1, 1)
    stamps: list[list[float]] = [[] for _ in range(streams)]

    def work(i: int) -> None:
        n = 0
        while n < frames:
            r = NvDecReader(clip)
            for nv12 in r.frames_nv12():
                rgb = nv12_to_rgb(nv12, r.height, r.width)
                x = rgb.permute(2, 0, 1)[None].float().flip(1)
                x = F.interpolate(x, size=(416, 416), mode="bilinear", align_corners=False)
                x = ((x - mean) * 0.017).half()
                with torch.inference_mode():
                    out = module(x)
                b, s, c = candidates(parser, dict(zip(names, out)), ctx)
                keep = s[0] >= 0.4
                b, s, c = b[0][keep], s[0][keep], c[0][keep]
                idx = batched_nms(b.double(), s.double(), c, 0.6)
                torch.cat([b[idx].float(), s[idx, None].float()], 1).cpu()
                stamps[i].append(time.perf_counter())
                n += 1
                if n >= frames:
                    break
    _threads(streams, work)
    return _steady(stamps)


def _steady(stamps: list[list[float]]) -> float:
    """Frames after each thread's first, over the time from the earliest first to the last."""
    firsts = [s[0] for s in stamps if s]
    lasts = [s[-1] for s in stamps if s]
    n = sum(max(len(s) - 1, 0) for s in stamps)
    dt = max(lasts) - min(firsts)
    return n / dt if dt > 0 else float("nan")


def object_rows(batch) -> list[tuple]:
    """Every object's box (left, top, width, height), label and id, frame by frame, read through
    the object views as DeepStream-style probes do."""
    return [(o.bbox.left, o.bbox.top, o.bbox.width, o.bbox.height, o.label, o.object_id)
            for f in batch.frames for o in f.objects]


def object_rows_from_columns(batch) -> list[tuple]:
    """The same values as object_rows, read from the frames' columns (one call per column)."""
    rows = []
    for f in batch.frames:
        objs = f.objects
        rows += [(x1, y1, x2 - x1, y2 - y1, label, oid) for (x1, y1, x2, y2), label, oid in
                 zip(objs.xyxy.tolist(), objs.labels, objs.object_id.tolist())]
    return rows


def read_every_object(pad, batch) -> None:
    """The probe whose cost the bench measures: every object's box and label, as probes read them."""
    object_rows(batch)


def read_every_object_from_columns(pad, batch) -> None:
    """The same probe reading columns instead of object views."""
    object_rows_from_columns(batch)


def have_x264() -> bool:
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


def vidpipe_run(clip: str, streams: int, frames: int, ini: str, profile: bool = False,
                sample: bool = False, workers: int = 0, user_probe=None, full: bool = False,
                nvdec_process: int = -1, upto: str = "tracker", cpu: bool = False) -> dict:
    """The pipeline's steady-state FPS, counted after its last analytics element: decode -> mux
    (upto="mux"), -> infer ("infer"), -> tracker (the default). full: osd, a 1920x1080 tiler and,
    where PyAV has it, the x264 encoder follow the tracker (DeepStream test3's display half)."""
    import torch

    from .. import make_element
    from ..core.pipeline import Pipeline
    from ..gpu import transfers
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=streams, batched_push_timeout=40000)
    infer = make_element("infer", "infer", config_file_path=ini, device="cuda:0", batch_size=streams,
                         workers=workers)
    tracker = make_element("tracker", "tracker", algorithm="iou")
    sink = make_element("fakesink", "sink")
    chain = [mux, infer, tracker][:("mux", "infer", "tracker").index(upto) + 1]
    counted = chain[-1]
    if full:
        chain += [make_element("osd", "osd"), make_element("tiler", "tiler", width=1920, height=1080)]
        if have_x264():
            chain.append(make_element("encoder", "encoder", codec="h264", preset="veryfast"))
    chain.append(sink)
    p.add(*chain)
    for i in range(streams):
        s = make_element("urisrc", f"src{i}", uri=clip, device="cuda:0", file_loop=True, num_buffers=frames,
                         nvdec_process=nvdec_process)
        p.add(s)
        s.link(mux)
    p.link(*chain)
    stamps: list[tuple[float, int]] = []
    objects = [0]

    def probe(pad, batch):
        stamps.append((time.perf_counter(), len(batch.frames)))
        objects[0] += sum(len(f.objects) for f in batch.frames)
    probe_s = [0.0]
    if user_probe is not None:
        def timed_probe(pad, batch):
            t0 = time.perf_counter()
            user_probe(pad, batch)
            probe_s[0] += time.perf_counter() - t0
        counted.src_pad.add_probe(timed_probe)
    counted.src_pad.add_probe(probe)
    transfers.reset()
    prof = None
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as tprofile
        prof = tprofile(activities=[ProfilerActivity.CUDA])
        prof.__enter__()
    from .stages import ThreadSampler, cores_used, process_cpu
    sampler = ThreadSampler() if sample else None
    cpu0, t0 = process_cpu(), time.perf_counter()
    with sampler or contextlib.nullcontext():
        p.run()
    wall, cpu1 = time.perf_counter() - t0, process_cpu()
    torch.cuda.synchronize()
    res: dict = {}
    if sampler is not None:
        res["threads"] = sampler.report()
    if cpu:
        res["cores"] = cores_used(p.stats(), cpu0, cpu1, wall)
    if sampler is not None or full:
        res["element_stats"] = {k: {s: v[s] for s in ("busy_s", "batches", "frames") if s in v}
                                for k, v in p.stats().items()}
    if prof is not None:
        prof.__exit__(None, None, None)
        d2h = [e for e in prof.events() if "DtoH" in e.name]
        h2d = [e for e in prof.events() if "HtoD" in e.name]
        res["profile"] = {"d2h_copies": len(d2h), "d2h_max_us": round(max((e.device_time for e in d2h), default=0), 1),
                          "h2d_copies": len(h2d), "h2d_max_us": round(max((e.device_time for e in h2d), default=0), 1)}
    total = sum(n for _, n in stamps)
    if len(stamps) > 1:
        res["fps"] = (total - stamps[0][1]) / (stamps[-1][0] - stamps[0][0])
    else:
        res["fps"] = float("nan")
    t = transfers.snapshot()
    res.update(frames=total, objects=objects[0], probe_s=probe_s[0], d2h_bytes_per_frame=round(t["d2h_bytes"] / max(total, 1), 1),
               frame_copies_to_host=t["frame_d2h"], h2d_bytes_per_frame=round(t["h2d_bytes"] / max(total, 1), 1),
               selection_fallbacks=infer.selection_fallbacks, selection_flags=list(infer.selection_flags),
               backend=infer.model_backend.describe().split("|")[-1].strip() if infer.model_backend else "")
    return res


def profile_stages(clip: str, tmp: str, results: list[dict], baseline: tuple) -> list[dict]:
    """The per-stage table (ms per batch, each stage alone) beside the pipeline's own time per
    batch, and a sampled run showing what each thread spends its time on."""
    from .baseline_gpu import batched_loop
    from .stages import ThreadSampler, stage_table
    rows = []
    print(f"{'streams':>7}{'NVDEC':>7}{'mux':>7}{'convert':>8}{'model':>7}{'decode':>7}{'graphed':>8}{'nms':>7}"
          f"{'track':>7}{'sum':>7}{'pipeline':>9}{'batched':>9}   (ms per batch of N frames)", flush=True)
    for r in results:
        n = r["streams"]
        ini = os.path.join(tmp, f"nanodet_b{n}.txt")
        st = stage_table(clip, n, ini)
        nvdec = 1e3 * n / r["nvdec_fps"]
        pipe, base = 1e3 * n / r["vidpipe_fps"], 1e3 * n / r["batched_fps"]
        front = st["graphed"] if st["graphed"] == st["graphed"] else st["convert"] + st["model"] + st["decode"]
        work = st["mux"] + front + st["nms"] + st["track"]
        row = {"streams": n, "nvdec_ms": round(nvdec, 3), **{f"{k}_ms": v for k, v in st.items()},
               "sum_ms": round(work, 3), "pipeline_ms": round(pipe, 3), "batched_ms": round(base, 3)}
        print(f"{n:>7}{nvdec:>7.2f}" + "".join(f"{st[k]:>{w}.2f}" for k, w in
                                                 (("mux", 7), ("convert", 8), ("model", 7), ("decode", 7),
                                                  ("graphed", 8), ("nms", 7), ("track", 7)))
              + f"{work:>7.2f}{pipe:>9.2f}{base:>9.2f}", flush=True)
        if n <= 16:
            sampled = vidpipe_run(clip, n, 120, ini, sample=True)
            row["threads"], row["element_stats"] = sampled["threads"], sampled["element_stats"]
            print(f"  sampled run, {n} streams: {sampled['fps']:.0f} FPS", flush=True)
            for name, top in sampled["threads"].items():
                if not name.startswith("vidpipe:src") or name.startswith("vidpipe:src0"):
                    print(f"    {name}: " + ", ".join(f"{k} {v:.0%}" for k, v in top), flush=True)
            print(f"    element stats: {json.dumps(sampled['element_stats'])}", flush=True)
            with ThreadSampler() as ts:
                b = batched_loop(clip, n, 120, *baseline)
            row["baseline_threads"] = ts.report()
            print(f"  sampled batched loop, {n} streams: {b['fps']:.0f} FPS", flush=True)
            for name, top in row["baseline_threads"].items():
                if "decode" not in name or name.startswith("Thread-1 "):
                    print(f"    {name}: " + ", ".join(f"{k} {v:.0%}" for k, v in top), flush=True)
        rows.append(row)
    return rows


def find_model(path: str | None) -> str:
    if path:
        return os.path.abspath(path)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for base in (os.environ.get("VIDPIPE_SHARED", ""), os.path.join(os.getcwd(), "..", "shared"),
                 os.path.join(repo, "..", "shared")):
        p = os.path.join(base, "models", "nanodet_m416.onnx")
        if base and os.path.exists(p):
            return os.path.abspath(p)
    raise SystemExit("nanodet_m416.onnx not found: pass --model PATH (it is in ../shared/models)")


def probe_cost(clip: str, n: int, frames: int, ini: str, wrong: list[str], reads: tuple = ("object views",),
               rounds: int = 2) -> tuple[list[dict], dict]:
    """FPS without and with a probe reading every object's box and label (after the tracker),
    through the object views and / or from the columns: `rounds` alternating rounds, the best run
    of each side (one pair of runs moved by up to 10% either way). Returns the results and the
    best run without the probe."""
    probes = {"object views": read_every_object, "columns": read_every_object_from_columns}
    runs: dict[str, list[dict]] = {k: [] for k in ("without", *reads)}
    for _ in range(rounds):
        for k in runs:
            runs[k].append(vidpipe_run(clip, n, frames, ini, user_probe=probes.get(k)))
    best = {k: max(v, key=lambda r: r["fps"]) for k, v in runs.items()}
    without = best["without"]
    opf0 = without["objects"] / max(without["frames"], 1)
    out = []
    for k in reads:
        for r in runs[k]:  # a probe that reads must not change what is found
            opf = r["objects"] / max(r["frames"], 1)
            if abs(opf - opf0) > 0.005 * max(opf0, 1e-9):
                wrong.append(f"probe run: {opf:.2f} objects/frame with the probe, {opf0:.2f} without")
        with_probe = best[k]
        opf = with_probe["objects"] / max(with_probe["frames"], 1)
        res = {"streams": n, "read": k, "objects_per_frame": round(opf, 2),
               "fps_without": round(without["fps"], 1), "fps_with": round(with_probe["fps"], 1),
               "fps_runs_without": [round(r["fps"], 1) for r in runs["without"]],
               "fps_runs_with": [round(r["fps"], 1) for r in runs[k]],
               "cost": round(1 - with_probe["fps"] / without["fps"], 4),
               "probe_us_per_object": round(1e6 * with_probe["probe_s"] / max(with_probe["objects"], 1), 3),
               "probe_share_of_wall": round(with_probe["probe_s"] * with_probe["fps"] / max(with_probe["frames"], 1), 4),
               "selection_fallbacks": with_probe["selection_fallbacks"]}
        print(f"probe reading every object's box and label ({k}), {n} streams, {opf:.1f} objects/frame: "
              f"{without['fps']:.0f} -> {with_probe['fps']:.0f} FPS ({-100 * res['cost']:+.1f}%; best of "
              f"{rounds} alternating runs each: {res['fps_runs_without']} -> {res['fps_runs_with']}), "
              f"{res['probe_us_per_object']:.2f} us per object; batches whose NMS left the graph "
              f"{with_probe['selection_fallbacks']} of {with_probe['frames'] // n} (frames over its candidates, "
              f"unsettled: {with_probe['selection_flags']})", flush=True)
        out.append(res)
    return out, without


def ladder(clip: str, n: int, frames: int, ini: str, procs=(False, True), note: str = "") -> list[dict]:
    """The pipeline cut short after each element, decoding in this process and in the worker:
    where throughput is lost."""
    rows = []
    for proc in procs:
        row = {"nvdec_process": proc, "note": note}
        for upto in ("mux", "infer", "tracker"):
            r = vidpipe_run(clip, n, frames, ini, upto=upto, nvdec_process=int(proc), cpu=True)
            row[upto], row[f"{upto}_cores"] = round(r["fps"], 1), r["cores"]
        rows.append(row)
        print(f"{n} streams{note} cut short, decoding {'in the worker process' if proc else 'in this process'}: "
              f"decode -> mux {row['mux']:.0f}, + infer {row['infer']:.0f}, + tracker {row['tracker']:.0f} FPS",
              flush=True)
        for upto in ("mux", "infer", "tracker"):
            print(f"    cores used, up to {upto}: {row[f'{upto}_cores']}", flush=True)
    return rows


def switch_interval_ab(clip: str, n: int, frames: int, ini: str, model: tuple) -> dict:
    """The pipeline (decoding in the worker) and the batched baseline with the interpreter's switch
    interval at its default (5 ms) and at 0.5 ms, alternating: how much their threads lose waiting
    for the GIL. The pipeline leaves the interval alone (Pipeline.switch_interval is unset), so
    both sides see the same setting."""
    import sys

    from .baseline_gpu import batched_loop
    res: dict = {"vidpipe": {}, "batched": {}}
    default = sys.getswitchinterval()
    for interval in (default, 0.0005, default, 0.0005):
        sys.setswitchinterval(interval)
        try:
            vp = vidpipe_run(clip, n, frames, ini, nvdec_process=1)["fps"]
            base = batched_loop(clip, n, frames, *model)["fps"]
        finally:
            sys.setswitchinterval(default)
        res["vidpipe"].setdefault(f"{interval * 1e3:g} ms", []).append(round(vp, 1))
        res["batched"].setdefault(f"{interval * 1e3:g} ms", []).append(round(base, 1))
    print(f"{n} streams, FPS by switch interval: vidpipe (worker) {res['vidpipe']}, batched baseline "
          f"{res['batched']}", flush=True)
    return res


def main_gpu(args: argparse.Namespace) -> int:
    import torch

    from ..gpu import require_cuda
    from ..infer.backends.pytorch import TorchBackend
    from ..infer.config import load_infer_config
    from ..infer.parsers import ParseContext, get_parser
    from ..elements.sources import AUTO_WORKER_STREAMS
    from .baseline_gpu import batched_loop
    require_cuda("cuda:0", "vidpipe bench")
    model = find_model(args.model)
    with tempfile.TemporaryDirectory(prefix="vidpipe-gpubench-") as tmp:
        clip = os.path.abspath(args.clip) if args.clip else make_bench_clip(os.path.join(tmp, "clip1080.h264"))
        streams = [int(s) for s in (args.streams if args.streams != "1,4" else "1,4,16,32,64").split(",")]
        gpu = torch.cuda.get_device_name(0)
        info = {"gpu": gpu, "torch": torch.__version__, "clip": os.path.basename(clip),
                "clip_bytes": os.path.getsize(clip), "model": os.path.basename(model)}
        print(f"device: {gpu}, torch {torch.__version__}; clip {info['clip']} ({info['clip_bytes']} bytes); "
              f"model {info['model']}", flush=True)
        be = TorchBackend(model, device="cuda:0", precision="fp16")
        eager = TorchBackend(model, device="cuda:0", precision="fp16", cuda_graphs=False)
        parser = get_parser("nanodet")
        ctx = ParseContext(416, 416, 80, 0.4)
        parser.check(be.outputs, ctx)
        results, wrong = [], []
        print(f"{'streams':>7}{'frames':>8}{'NVDEC':>8}{'h265':>7}{'model':>8}{'batched':>9}{'perframe':>9}{'in-proc':>9}"
              f"{'worker':>8}{'vidpipe':>9}{'serial':>8}{'together':>10}{'vs batched':>11}{'vs min':>8}{'vs tog':>8}{'obj/fr base':>12}{'obj/fr vp':>10}{'frames->host':>13}", flush=True)
        for n in streams:
            frames = args.frames if args.frames != 250 else max(40, min(600, 4800 // n))
            ini = write_ini(os.path.join(tmp, f"nanodet_b{n}.txt"), model, n)
            cfg = load_infer_config(ini)
            assert cfg.batch_size == n
            dec = nvdec_only(clip, n, frames)
            tog_dec, tog_mod = nvdec_with_model(clip, n, frames, be)
            dec265 = nvdec_only(args.clip_h265, n, frames) if args.clip_h265 else float("nan")
            mod = model_only(be, n)
            naive = per_frame_loop(clip, n, max(20, min(frames, 120, 2400 // n)), eager.module,
                                   [o.name for o in be.outputs], parser, ctx)
            # the baseline and both decoding modes twice, alternating; each side's better run counts
            # (one run of a few seconds moves by up to 20% on these machines)
            runs: dict[str, list[dict]] = {"base": [], "inproc": [], "proc": []}
            for _ in range(args.repeat or 2):
                runs["base"].append(batched_loop(clip, n, frames, be, parser, ctx))
                runs["inproc"].append(vidpipe_run(clip, n, frames, ini, nvdec_process=0))
                runs["proc"].append(vidpipe_run(clip, n, frames, ini, nvdec_process=1))
            base, inproc, proc = (max(runs[k], key=lambda r: r["fps"]) for k in ("base", "inproc", "proc"))
            vp, other = (proc, inproc) if n >= AUTO_WORKER_STREAMS else (inproc, proc)
            serial = vidpipe_run(clip, n, frames, ini, workers=1)
            bound = min(dec, mod) or float("nan")
            together = min(tog_dec, tog_mod) or float("nan")
            vp_opf = vp["objects"] / max(vp["frames"], 1)
            diff = abs(vp_opf - base["objects_per_frame"]) / max(base["objects_per_frame"], 1e-9)
            serial_opf = serial["objects"] / max(serial["frames"], 1)
            if abs(serial_opf - vp_opf) > 0.005 * max(vp_opf, 1e-9):  # fp16 at other batch sizes: not bit-equal
                wrong.append(f"{n} streams: vidpipe with infer workers=1 found {serial['objects']} objects in "
                             f"{serial['frames']} frames, with the default {vp['objects']} in {vp['frames']}")
            other_opf = other["objects"] / max(other["frames"], 1)
            if abs(other_opf - vp_opf) > 0.005 * max(vp_opf, 1e-9):
                wrong.append(f"{n} streams: vidpipe decoding in the worker found {proc['objects']} objects in "
                             f"{proc['frames']} frames, decoding in this process {inproc['objects']} in {inproc['frames']}")
            if diff > 0.02:
                wrong.append(f"{n} streams: vidpipe {vp_opf:.2f} objects/frame, batched baseline "
                             f"{base['objects_per_frame']:.2f} ({diff:.1%} apart)")
            row = {"streams": n, "frames_per_stream": frames, "nvdec_fps": round(dec, 1),
                   "nvdec_h265_fps": round(dec265, 1), "model_fps": round(mod, 1),
                   "batched_fps": round(base["fps"], 1), "per_frame_loop_fps": round(naive, 1),
                   "vidpipe_fps": round(vp["fps"], 1), "vidpipe_serial_fps": round(serial["fps"], 1),
                   "vidpipe_nvdec_process_fps": round(proc["fps"], 1),
                   "nvdec_process_vs_batched": round(proc["fps"] / base["fps"], 3),
                   "vidpipe_in_process_fps": round(inproc["fps"], 1),
                   "runs_fps": {k: [round(r["fps"], 1) for r in v] for k, v in runs.items()},
                   "in_process_vs_batched": round(inproc["fps"] / base["fps"], 3),
                   "default_decodes_in": "worker" if vp is proc else "this process",
                   "vs_batched": round(vp["fps"] / base["fps"], 3),
                   "vs_min_nvdec_model": round(vp["fps"] / bound, 3),
                   "together_nvdec_fps": round(tog_dec, 1), "together_model_fps": round(tog_mod, 1),
                   "vs_together": round(vp["fps"] / together, 3), "vs_per_frame_loop": round(vp["fps"] / naive, 3),
                   "objects_per_frame_batched": round(base["objects_per_frame"], 3),
                   "objects_per_frame_vidpipe": round(vp_opf, 3), "objects_per_frame_diff": round(diff, 4),
                   **{k: v for k, v in vp.items() if k != "fps"}}
            results.append(row)
            print(f"{n:>7}{frames:>8}{dec:>8.0f}{dec265:>7.0f}{mod:>8.0f}{base['fps']:>9.0f}{naive:>9.0f}{inproc['fps']:>9.0f}"
                  f"{proc['fps']:>8.0f}{vp['fps']:>9.0f}{serial['fps']:>8.0f}{together:>10.0f}{row['vs_batched']:>11.2f}{row['vs_min_nvdec_model']:>8.2f}{row['vs_together']:>8.2f}{base['objects_per_frame']:>12.2f}"
                  f"{vp_opf:>10.2f}{vp['frame_copies_to_host']:>13}", flush=True)
            if args.json:  # after every row: a run cut short still leaves its figures
                with open(args.json, "w") as fh:
                    json.dump({"machine": info, "results": results, "wrong": wrong}, fh, indent=2)
        prof, stages = None, []
        if args.profile:
            n = 16 if 16 in streams else streams[-1]
            ini = os.path.join(tmp, f"nanodet_b{n}.txt")
            prof = vidpipe_run(clip, n, 60, ini, profile=True)
            print(f"profiled {n} streams x 60 frames: {json.dumps(prof.get('profile'))}", flush=True)
            stages = profile_stages(clip, tmp, results, (be, parser, ctx))
            prof["ladder"] = ladder(clip, n, args.frames, ini)
            if n != streams[-1]:
                prof["ladder"] += ladder(clip, streams[-1], args.frames,
                                         os.path.join(tmp, f"nanodet_b{streams[-1]}.txt"))
            prof["probe_cost"], without = probe_cost(clip, n, args.frames, ini, wrong)
            crowded = write_ini(os.path.join(tmp, f"nanodet_b{n}_crowded.txt"), model, n, PROBE_THRESHOLD)
            prof["probe_cost"] += probe_cost(clip, n, args.frames, crowded, wrong, ("object views", "columns"))[0]
            prof["ladder"] += ladder(clip, n, args.frames, crowded, (True,), f" at threshold {PROBE_THRESHOLD}")
            prof["switch_interval"] = switch_interval_ab(clip, n, args.frames, ini, (be, parser, ctx))
            opf0 = without["objects"] / max(without["frames"], 1)
            full = vidpipe_run(clip, n, args.frames, ini, full=True)
            opf_full = full["objects"] / max(full["frames"], 1)
            if abs(opf_full - opf0) > 0.005 * max(opf0, 1e-9):
                wrong.append(f"full pipeline: {opf_full:.2f} objects/frame, detect+track alone {opf0:.2f}")
            busy = {k: v["busy_s"] for k, v in full["element_stats"].items()
                    if k in ("infer", "tracker", "osd", "tiler", "encoder")}
            bound = max(busy, key=busy.get)
            encoder = ("x264 on the host (veryfast; each tiled frame copied to the host: H100/H200 have no NVENC)"
                       if "encoder" in busy else "none: H100/H200 have no NVENC and PyAV (x264) is not installed")
            prof["full_pipeline"] = {"streams": n, "fps": round(full["fps"], 1), "fps_detect_track": round(without["fps"], 1),
                                     "objects_per_frame": round(opf_full, 2), "busy_s": busy, "bound": bound,
                                     "encoder": encoder}
            print(f"full pipeline (decode -> mux -> infer -> tracker -> osd -> tiler 1920x1080 -> "
                  f"{'encoder -> ' if 'encoder' in busy else ''}fakesink), {n} streams: "
                  f"{full['fps']:.0f} FPS (detect+track {without['fps']:.0f}); busiest element {bound} "
                  f"({', '.join(f'{k} {v:.2f} s' for k, v in busy.items())}); encoder: {encoder}", flush=True)
            from .decode_ceiling import run as decode_ceiling
            prof["decode_ceiling"] = decode_ceiling(clip)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"machine": info, "results": results, "profiled_run": prof, "stages": stages,
                           "wrong": wrong}, fh, indent=2)
    from . import finish
    return finish(wrong)
