"""Same-host A/B of two versions of vidpipe: the pipeline of the GPU bench (decode -> mux ->
infer -> tracker) at the given settings, one JSON line per run, for a driver that alternates
versions (a version is a source tree: `git archive <commit> src | tar -x -C <dir>`):

    for r in 1 2 3; do for v in <old dir>/src src; do
      PYTHONPATH=/tmp/site:$v python3 benchmarks/gpu/experiments/versions_ab.py $v worker:16 worker:64
    done; done

Each setting is MODE:STREAMS, MODE `worker` (NVDEC in the worker process) or `inproc`."""
import json
import os
import sys

from carried import CLIP, ini

if __name__ == "__main__":
    import vidpipe
    from vidpipe.bench.gpu import vidpipe_run
    tag = sys.argv[1]
    for spec in sys.argv[2:]:
        mode, n = spec.split(":")
        r = vidpipe_run(CLIP, int(n), 300, ini(int(n)), nvdec_process=1 if mode == "worker" else 0)
        print(json.dumps({"version": tag, "setting": spec, "fps": round(r["fps"], 1),
                          "objects_per_frame": round(r["objects"] / max(r["frames"], 1), 3),
                          "code": os.path.dirname(vidpipe.__file__)}), flush=True)
