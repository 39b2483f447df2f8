"""Experiment: NVDEC throughput while the model keeps the GPU busy, with the decoders' copies on the
legacy stream, on their own streams, and on high-priority streams."""
import sys, time, threading, json
sys.path.insert(0, "src")


def main():
    import torch
    import PyNvVideoCodec as nvc
    from vidpipe.bench.gpu import _threads, _steady
    from vidpipe.infer.backends.pytorch import TorchBackend
    clip = ".devdata/bench1080.h264"
    be = TorchBackend(".devdata/shared/models/nanodet_m416.onnx", device="cuda:0", precision="fp16")
    x = torch.randn(16, 3, 416, 416, device="cuda").half()
    lo, hi = torch.cuda.Stream.priority_range() if hasattr(torch.cuda.Stream, "priority_range") else (0, -1)
    print("priority range", lo, hi, flush=True)
    for _ in range(3):
        be.run_torch(x)
    torch.cuda.synchronize()

    def model_loop(stop, count):
        ms = torch.cuda.Stream(priority=0)
        with torch.cuda.stream(ms):
            while not stop.is_set():
                for _ in range(4):
                    be.run_torch(x)
                count[0] += 4
                ms.synchronize()

    def run(n, mode, load, frames=300):
        stamps = [[] for _ in range(n)]

        def work(i):
            st = {"stream0": None, "own": torch.cuda.Stream(), "high": torch.cuda.Stream(priority=-1)}[mode]
            dmx = nvc.CreateDemuxer(filename=clip)
            dec = nvc.CreateDecoder(gpuid=0, codec=dmx.GetNvCodecId(), cudacontext=0,
                                    cudastream=st.cuda_stream if st is not None else 0, usedevicememory=True)
            while len(stamps[i]) < frames:
                pkt = dmx.Demux()
                for f in dec.Decode(pkt):
                    torch.from_dlpack(f)
                    stamps[i].append(time.perf_counter())
                if pkt.bsl == 0:
                    break
        stop, count = threading.Event(), [0]
        th = threading.Thread(target=model_loop, args=(stop, count)) if load else None
        if th:
            th.start()
            time.sleep(0.3)
        t0, c0 = time.perf_counter(), count[0]
        _threads(n, work)
        model_fps = (count[0] - c0) * 16 / (time.perf_counter() - t0)
        stop.set()
        if th:
            th.join()
        return round(_steady(stamps), 1), round(model_fps, 1)

    out = {}
    for load in (False, True):
        for mode in ("stream0", "own", "high", "stream0", "high"):
            r = run(16, mode, load)
            out.setdefault(f"load={load} {mode}", []).append(r)
            print("model load" if load else "no load", mode, "NVDEC FPS", r[0], "model FPS", r[1], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
