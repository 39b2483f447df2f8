"""Experiment: what the NVDEC worker's hand-over costs. 16 streams decoded in the worker process
and delivered to this process (frames dropped), against decoding here. The variants measured
before (the worker waiting for each copy, a ring of 12, nobody waiting, one pipe and a dispatcher
thread for all streams) are in benchmarks/RESULTS.md; this file at commit 27e0875 ran them."""
import json
import sys
import time

sys.path.insert(0, "src")
CLIP = ".devdata/bench1080.h264"


def main():
    from vidpipe.bench.gpu import _steady, _threads, nvdec_only
    from vidpipe.gpu import decode_process as dp
    n, frames = 16, 300

    def worker_rate():
        dp._worker_for(0)  # started before the clock
        stamps = [[] for _ in range(n)]

        def work(i):
            r = dp.ProcessNvDecReader(CLIP)
            for _ in r:
                stamps[i].append(time.perf_counter())
            r.close()
        _threads(n, work)
        return round(_steady(stamps), 1)

    out = {}

    def rec(k, v):
        out.setdefault(k, []).append(v)
        print(k, v, flush=True)
    for _ in range(2):
        rec("in-process NvDecReader (clone per frame)", round(nvdec_only(CLIP, n, frames), 1))
        rec("worker, a socket per stream", worker_rate())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
