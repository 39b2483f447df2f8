"""The pipeline of the GPU bench (decode -> mux -> infer -> tracker) at the given settings, each
MODE:STREAMS:CHUNK (MODE `worker` or `inproc`, CHUNK infer's graph-chunk, 0 = the whole batch),
one JSON line per run. For a fair A/B run each setting in a process of its own, alternating (the
first pipeline in a process runs fastest):

    for r in 1 2 3; do for c in 16 8; do
      PYTHONPATH=/tmp/site:src python3 benchmarks/gpu/experiments/graph_chunk.py --frames 600 worker:16:$c
    done; done"""
import json

from carried import CLIP, ini, settings

if __name__ == "__main__":
    import vidpipe
    from vidpipe.bench.gpu import vidpipe_run
    args = settings(__doc__)
    make = vidpipe.make_element
    for spec in args.settings:
        mode, n, chunk = spec.split(":")

        def with_chunk(factory, name=None, **props):
            if factory == "infer":
                props["graph_chunk"] = int(chunk)
            return make(factory, name, **props)
        vidpipe.make_element = with_chunk  # vidpipe_run makes its elements through vidpipe.make_element
        try:
            r = vidpipe_run(CLIP, int(n), args.frames, ini(int(n)), nvdec_process=1 if mode == "worker" else 0)
        finally:
            vidpipe.make_element = make
        print(json.dumps({"setting": spec, "fps": round(r["fps"], 1),
                          "objects_per_frame": round(r["objects"] / max(r["frames"], 1), 3)}), flush=True)
