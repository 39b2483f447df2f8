"""The bench's pipeline (decoding in the NVDEC worker) and the batched baseline with this
process's threads kept on a few CPU cores, against the default (every core): whether handing the
GIL between threads on other cores is part of what the 16-stream figures lose. One JSON line per
setting SIDE:STREAMS:CORES (SIDE `worker` or `base`, CORES a count or `all`); the NVDEC worker is
started before the pinning, so only this process's threads are kept on CORES. Run each setting in
a process of its own, alternating:

    for r in 1 2 3; do for s in worker:16:all worker:16:2 base:16:all base:16:2; do
      PYTHONPATH=/tmp/site:src python3 benchmarks/gpu/experiments/affinity.py $s
    done; done"""
import json
import os

from carried import CLIP, MODEL, ini, settings

if __name__ == "__main__":
    args = settings(__doc__)
    from vidpipe.bench.baseline_gpu import batched_loop
    from vidpipe.bench.gpu import vidpipe_run
    from vidpipe.gpu.decode_process import _worker_for
    from vidpipe.infer.backends.pytorch import TorchBackend
    from vidpipe.infer.parsers import ParseContext, get_parser
    every = sorted(os.sched_getaffinity(0))
    for spec in args.settings:
        side, n, cores = spec.split(":")
        n = int(n)
        if side == "worker":
            _worker_for(0)  # started with every core
        keep = every if cores == "all" else every[:int(cores)]
        os.sched_setaffinity(0, keep)  # this thread; the threads it starts inherit it
        try:
            if side == "worker":
                r = vidpipe_run(CLIP, n, args.frames, ini(n), nvdec_process=1)
                fps, opf = r["fps"], r["objects"] / max(r["frames"], 1)
            else:
                be = TorchBackend(MODEL, device="cuda:0", precision="fp16")
                parser, ctx = get_parser("nanodet"), ParseContext(416, 416, 80, 0.4)
                parser.check(be.outputs, ctx)
                r = batched_loop(CLIP, n, args.frames, be, parser, ctx)
                fps, opf = r["fps"], r["objects_per_frame"]
        finally:
            os.sched_setaffinity(0, every)
        print(json.dumps({"setting": spec, "fps": round(fps, 1), "objects_per_frame": round(opf, 3),
                          "cores": len(keep)}), flush=True)
