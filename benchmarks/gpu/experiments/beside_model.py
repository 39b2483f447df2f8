"""What the GPU leaves for the pipeline: at N streams, NVDEC alone, the model alone, the two side
by side with nothing between them (the bench's `together`), and the pipeline cut short after the
muxer (decoded and batched, no model) alone and while a thread of this process runs the model
flat out at batch N, decoding in the worker process and in this one; then the whole pipeline
(decode -> mux -> infer -> tracker) in both modes. One JSON line per stream count:

    PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/gpu/experiments/beside_model.py 16,64
"""
import json
import sys

from carried import CLIP, MODEL, ini

if __name__ == "__main__":
    from vidpipe.bench import gpu as g
    from vidpipe.infer.backends.pytorch import TorchBackend
    be = TorchBackend(MODEL, device="cuda:0", precision="fp16")
    for n in [int(x) for x in sys.argv[1].split(",")]:
        config = ini(n)
        res = {"streams": n, "nvdec": round(g.nvdec_only(CLIP, n, 300)), "model": round(g.model_only(be, n))}
        d, m = g.nvdec_with_model(CLIP, n, 300, be)
        res["together_nvdec_model"] = [round(d), round(m)]
        for proc in (1, 0):
            tag = "worker" if proc else "inproc"

            def muxed(proc=proc):
                return g.vidpipe_run(CLIP, n, 300, config, upto="mux", nvdec_process=proc)
            res[f"mux_{tag}"] = round(muxed()["fps"])
            r, model_fps = g.beside_model(be, n, muxed)
            res[f"mux_{tag}_beside_model"] = [round(r["fps"]), round(model_fps)]
            res[f"vidpipe_{tag}"] = round(g.vidpipe_run(CLIP, n, 300, config, nvdec_process=proc)["fps"])
        print(json.dumps(res), flush=True)
