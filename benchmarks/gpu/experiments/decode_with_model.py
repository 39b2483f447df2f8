"""Experiment: why NVDEC + model at once run slower than either alone."""
import sys, time, threading, json
sys.path.insert(0, "src")


def main():
    import torch
    from vidpipe.bench.gpu import nvdec_only, _threads, _steady
    from vidpipe.infer.backends.pytorch import TorchBackend
    clip = ".devdata/bench1080.h264"
    be = TorchBackend(".devdata/shared/models/nanodet_m416.onnx", device="cuda:0", precision="fp16")
    n = 16
    x = torch.randn(n, 3, 416, 416, device="cuda").half()
    be.run_torch(x)
    torch.cuda.synchronize()

    def with_model(fn):
        stop, done = threading.Event(), [0]

        def model():
            s = torch.cuda.Stream()
            with torch.cuda.stream(s):
                while not stop.is_set():
                    for _ in range(4):
                        be.run_torch(x)
                    s.synchronize()
                    done[0] += 4
        th = threading.Thread(target=model, daemon=True)
        th.start()
        time.sleep(0.3)
        t0, n0 = time.perf_counter(), done[0]
        other = fn()
        n1, t1 = done[0], time.perf_counter()
        stop.set()
        th.join()
        return round(other, 1), round((n1 - n0) * n / (t1 - t0), 1)

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
