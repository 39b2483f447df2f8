"""The pipeline of the GPU bench (decode -> mux -> infer -> tracker) at the given settings, each
MODE:STREAMS:CHUNK (MODE `worker` or `inproc`, CHUNK infer's graph-chunk, 0 = the whole batch),
one JSON line per run. For a fair A/B run each setting in a process of its own, alternating (the
first pipeline in a process runs fastest):

    for r in 1 2 3; do for c in 16 8; do
      PYTHONPATH=/tmp/site:src python3 benchmarks/gpu/experiments/graph_chunk.py --frames 600 worker:16:$c
    done; done"""
import argparse
import json
import os
import tempfile

if __name__ == "__main__":
    import vidpipe
    from vidpipe.bench.gpu import vidpipe_run, write_ini
    ap = argparse.ArgumentParser()
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    clip = os.path.abspath(".devdata/bench1080.h264")
    model = os.path.abspath(".devdata/shared/models/nanodet_m416.onnx")
    tmp = tempfile.mkdtemp()
    make = vidpipe.make_element
    for spec in args.settings:
        mode, n, chunk = spec.split(":")
        ini = write_ini(os.path.join(tmp, f"b{n}.txt"), model, int(n))

        def with_chunk(factory, name=None, **props):
            if factory == "infer":
                props["graph_chunk"] = int(chunk)
            return make(factory, name, **props)
        vidpipe.make_element = with_chunk  # vidpipe_run makes its elements through vidpipe.make_element
        try:
            r = vidpipe_run(clip, int(n), args.frames, ini, nvdec_process=1 if mode == "worker" else 0)
        finally:
            vidpipe.make_element = make
        print(json.dumps({"setting": spec, "fps": round(r["fps"], 1),
                          "objects_per_frame": round(r["objects"] / max(r["frames"], 1), 3)}), flush=True)
