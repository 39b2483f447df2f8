"""Experiment: why NVDEC + model at once run slower than either alone."""
import sys, time, json
sys.path.insert(0, "src")


def main():
    from vidpipe.bench.gpu import beside_model, nvdec_only, _threads, _steady
    from vidpipe.infer.backends.pytorch import TorchBackend
    clip = ".devdata/bench1080.h264"
    be = TorchBackend(".devdata/shared/models/nanodet_m416.onnx", device="cuda:0", precision="fp16")
    n = 16

    def with_model(fn):
        other, model_fps = beside_model(be, n, fn)
        return round(other, 1), round(model_fps, 1)

    def worker_decode():
        from vidpipe.gpu.decode_process import ProcessNvDecReader
        stamps = [[] for _ in range(n)]

        def work(i):
            r = ProcessNvDecReader(clip)
            for _ in r:
                stamps[i].append(time.perf_counter())
            r.close()
        _threads(n, work)
        return _steady(stamps)

    def churn(seconds=2.0, threads=16):
        stop = time.perf_counter() + seconds
        cnt = [0]

        def w(i):
            while time.perf_counter() < stop:
                time.sleep(0.0005)  # releases the GIL, takes it back: as a decoder's Decode()
                s = 0
                for k in range(200):  # a little Python per "frame"
                    s += k
                cnt[0] += 1
        _threads(threads, w)
        return cnt[0] / seconds

    out = {}
    def rec(k, v):
        out.setdefault(k, []).append(v)
        print(k, v, flush=True)
    worker_decode()  # starts the worker
    for rep in range(2):
        rec("model alone", with_model(lambda: (time.sleep(1.5), 0.0)[1]))
        rec("in-process decode + model", with_model(lambda: nvdec_only(clip, n, 300)))
        rec("worker decode alone", (round(worker_decode(), 1), 0))
        rec("worker decode + model", with_model(worker_decode))
        rec("16 GIL-churn threads + model", with_model(churn))
        sys.setswitchinterval(0.0005)
        rec("in-process decode + model, switch 0.5 ms", with_model(lambda: nvdec_only(clip, n, 300)))
        rec("16 GIL-churn threads + model, switch 0.5 ms", with_model(churn))
        sys.setswitchinterval(0.005)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
