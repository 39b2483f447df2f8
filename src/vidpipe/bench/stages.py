"""Where a batch's time goes: the per-stage table of `vidpipe bench --device cuda --profile`.

stage_table() runs the pipeline's own elements one batch at a time on frames decoded beforehand,
waiting for the device after each stage, so each figure is that stage alone (milliseconds per
batch): mux (gathering the frames into a Batch), convert (NV12 batch -> model input), model, decode
(the model's outputs -> candidate boxes), graphed (those three, then thresholds and NMS in fixed
shapes, replayed as one CUDA graph per chunk of up to 16 frames, as the pipeline runs them), nms
(eagerly: thresholds, NMS, the host copy of the kept boxes, rows added to the table; after the
graph: the copy and the rows) and track. NVDEC is its own throughput turned into milliseconds per batch of N frames.

ThreadSampler samples every thread's Python stack while the real pipeline runs, so the table can
be read against what each thread was doing (where Python, not the device, is the limit).
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import threading
import time
from collections import Counter


def stage_table(clip: str, streams: int, ini: str, *, batches: int = 12, device: str = "cuda:0",
                algorithm: str = "iou") -> dict[str, float]:
    """Median milliseconds per batch of `streams` frames for each stage (device synchronised)."""
    import torch

    from .. import make_element
    from ..core.meta import Batch, Frame
    from ..gpu.decode import NvDecReader

    reader = NvDecReader(clip, device)
    clips = []
    for df in reader:
        clips.append(df)
        if len(clips) >= batches:
            break
    infer = make_element("infer", config_file_path=ini, device=device, batch_size=streams)
    tracker = make_element("tracker", algorithm=algorithm)
    infer.start()
    tracker.start()
    sync = torch.cuda.synchronize
    from ..infer.parsers.pytorch import candidates
    keys = ("mux", "convert", "model", "decode", "graphed", "nms", "track")
    times: dict[str, list[float]] = {k: [] for k in keys}

    def timed(key: str, fn, *a):
        sync()
        t0 = time.perf_counter()
        out = fn(*a)
        sync()
        times[key].append((time.perf_counter() - t0) * 1e3)
        return out
    front = infer._front  # captured here as negotiate() does in a pipeline (chunks as there)
    if front is not None:
        front.batch = min(streams, infer.graph_chunk or streams)
        front.slots = infer._torch_in_flight() * -(-streams // front.batch)
        front.capture(tuple(clips[0].nv12.shape))
    for _ in range(2):  # the first round warms caches, kernels and graphs; the second is measured
        for v in times.values():
            v.clear()
        for b, df in enumerate(clips):
            frames = [Frame(None, s, b, df.pts_seconds, source_size=(reader.width, reader.height),
                            nv12=df.nv12) for s in range(streams)]
            batch = timed("mux", Batch, frames)
            nv12s = [f.nv12 for f in frames]
            x, tf = timed("convert", infer.pre.from_nv12, nv12s)
            out = timed("model", infer._run_model, x)
            cand = timed("decode", candidates, infer.out_parser, out, infer.ctx)
            cands, selected = [cand], None
            graphed = timed("graphed", infer._graphed, nv12s) if front is not None else None
            if graphed is not None:  # the graphs: candidates and the kept boxes, per chunk
                cands, selected, tf = graphed
                selected = infer._replayed(selected)
            timed("nms", infer._device_objects, batch, cands, tf, selected)
            timed("track", tracker.process, batch)
    return {k: round(statistics.median(v), 3) if v else float("nan") for k, v in times.items()}


class ThreadSampler:
    """Samples all threads' stacks every `interval` seconds; per thread, the share of samples in
    each innermost vidpipe (or baseline) function, and in each innermost function of any module."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.samples: dict[str, Counter] = {}
        self.leaf: dict[str, Counter] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ThreadSampler:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for tid, frame in sys._current_frames().items():
                if tid == me:
                    continue
                name = names.get(tid, str(tid))
                code = frame.f_code
                leaf = f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"
                ours = None
                f = frame
                while f is not None:
                    fn = f.f_code.co_filename
                    if "/vidpipe/" in fn and "/bench/stages.py" not in fn:
                        ours = f"{fn.split('/vidpipe/', 1)[1]}:{f.f_code.co_name}"
                        break
                    f = f.f_back
                self.samples.setdefault(name, Counter())[ours or "-"] += 1
                self.leaf.setdefault(name, Counter())[leaf] += 1

    def report(self, top: int = 6) -> dict[str, list[tuple[str, float]]]:
        """Per thread (threads idle in queue waits included): the top functions, share of samples."""
        out = {}
        for name, c in sorted(self.samples.items()):
            total = sum(c.values())
            out[name] = [(k, round(v / total, 3)) for k, v in c.most_common(top)]
            lc = self.leaf[name]
            out[name + " (leaf)"] = [(k, round(v / total, 3)) for k, v in lc.most_common(top)]
        return out



def process_cpu() -> tuple[float, float]:
    """(CPU seconds of this process, of its live child processes such as the NVDEC worker), from
    getrusage and /proc (children: 0 where there is no /proc)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    children = 0.0
    if os.path.isdir("/proc"):
        me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                children += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return ru.ru_utime + ru.ru_stime, children


def cores_used(stats: dict[str, dict], cpu0: tuple[float, float], cpu1: tuple[float, float], wall: float) -> dict:
    """Cores used over a run (CPU s / wall s): each element's thread (sources summed), the
    inference completion threads, this whole process and the worker processes."""
    out: dict[str, float] = {}
    for name, st in stats.items():
        if "cpu_s" in st:
            key = "sources" if re.fullmatch(r"src\d+", name) else name
            out[key] = out.get(key, 0.0) + st["cpu_s"]
        if st.get("completion_cpu_s"):
            out[f"{name} completion"] = st["completion_cpu_s"]
    out = {k: round(v / wall, 3) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}
    out["this process"] = round((cpu1[0] - cpu0[0]) / wall, 3)
    out["worker processes"] = round((cpu1[1] - cpu0[1]) / wall, 3)
    return out
