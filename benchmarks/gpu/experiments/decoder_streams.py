"""Experiment: NVDEC decoders on the legacy default stream vs their own streams (with and without
the reader's clone), FPS steady state and process CPU per frame."""
import sys, time, resource, json
sys.path.insert(0, "src")


def main():
    import torch
    import PyNvVideoCodec as nvc
    from vidpipe.bench.gpu import _threads, _steady
    clip = ".devdata/bench1080.h264"
    torch.zeros(1, device="cuda")

    def run(n, mode, frames=300):
        stamps = [[] for _ in range(n)]

        def work(i):
            own = mode.startswith("own")
            st = torch.cuda.Stream() if own else torch.cuda.default_stream()
            dmx = nvc.CreateDemuxer(filename=clip)
            dec = nvc.CreateDecoder(gpuid=0, codec=dmx.GetNvCodecId(), cudacontext=0,
                                    cudastream=st.cuda_stream if own else 0, usedevicememory=True)
            with torch.cuda.stream(st):
                while len(stamps[i]) < frames:
                    pkt = dmx.Demux()
                    for f in dec.Decode(pkt):
                        t = torch.from_dlpack(f)
                        if mode.endswith("clone"):
                            t[:1620, :1920].clone()
                            if own:
                                st.synchronize()
                        stamps[i].append(time.perf_counter())
                    if pkt.bsl == 0:
                        break
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        _threads(n, work)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        total = sum(len(s) for s in stamps)
        return round(_steady(stamps), 1), round(1e3 * cpu / max(total, 1), 3)

    out = {}
    for n in (1, 16, 32):
        for mode in ("stream0", "own", "stream0+clone", "own+clone", "stream0", "own"):
            fps, cpu = run(n, mode)
            out.setdefault(f"{n} {mode}", []).append((fps, cpu))
            print(n, mode, fps, "FPS", cpu, "ms CPU/frame", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
