"""Experiment: what the NVDEC worker's hand-over costs. 16 streams decoded in the worker process
and delivered to this process, with the hand-over done four ways, against decoding here."""
import json
import os
import sys
import time

sys.path.insert(0, "src")
CLIP = ".devdata/bench1080.h264"


def serve_variant(conn, index):
    """decode_process.serve with the hand-over chosen by $HANDOVER and $RING_N: sync (the worker
    waits for each copy into the ring; the code before this experiment), nosync (nobody waits:
    unsafe, the upper bound) or ipc (the worker records the slot's interprocess event, the source's
    stream waits on it: the code after)."""
    import torch
    import torch.multiprocessing  # noqa: F401
    from vidpipe.gpu.decode import NvDecReader
    from vidpipe.gpu.decode_process import sender, serve_streams
    mode, ring_n = os.environ["HANDOVER"], int(os.environ.get("RING_N", "6"))
    torch.cuda.set_device(index)
    send = sender(conn)

    def run(sid, path, slots):
        reader = NvDecReader(path, f"cuda:{index}")
        h, w = reader.height, reader.width
        ring = torch.empty((ring_n, h * 3 // 2, w), dtype=torch.uint8, device=f"cuda:{index}")
        evs = [torch.cuda.Event(interprocess=True) for _ in range(ring_n)]
        for s in range(ring_n):
            slots.put(s)
        meta = {"width": w, "height": h, "fps": reader.fps, "codec": reader.codec}
        for e in evs:  # the source waits on these; recorded per frame only in the ipc mode
            e.record()
        meta["events"] = [e.ipc_handle() for e in evs]
        send("opened", sid, meta, ring)
        done = torch.cuda.Event()
        for i, nv12 in enumerate(reader.frames_nv12()):
            slot = slots.get()
            if slot is None:
                return
            ring[slot].copy_(nv12[:h * 3 // 2, :w])
            if mode == "sync":
                done.record()
                done.synchronize()
            elif mode == "ipc":
                evs[slot].record()
            send("frame", sid, slot, i, 0)
        send("eos", sid, 0)
        for _ in range(ring_n):
            if slots.get() is None:
                return

    serve_streams(conn, run)


def main():
    from vidpipe.bench.gpu import _steady, _threads, nvdec_only
    from vidpipe.gpu import decode_process as dp
    dp.serve = serve_variant
    n, frames = 16, 300

    def worker_rate(mode, ring_n=6):
        os.environ["HANDOVER"], os.environ["RING_N"] = mode, str(ring_n)
        for w in list(dp._workers.values()):
            w.proc.terminate()
            w.proc.join()
        dp._workers.clear()
        dp._worker_for(0)  # starts it before the clock
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
    for rep in range(2):
        rec("in-process NvDecReader (clone per frame)", round(nvdec_only(CLIP, n, frames), 1))
        rec("worker sync (today)", worker_rate("sync"))
        rec("worker sync, ring 12", worker_rate("sync", 12))
        rec("worker nosync (unsafe bound)", worker_rate("nosync"))
        rec("worker ipc events", worker_rate("ipc"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
