"""Do a frame's objects depend on the run? Three runs of one pipeline (decode -> mux -> infer,
or -> tracker) at N streams; the k-th frame of each stream compared bit for bit with the first
run's (rows sorted), with its batch (index, place, size, distinct streams) for the first few
that differ:

    PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/gpu/experiments/run_to_run.py 16 300 worker tracker
"""
import collections
import json
import sys

import numpy as np
from carried import CLIP, ini


def one(n: int, frames: int, mode: str, upto: str):
    from vidpipe.bench.gpu import vidpipe_run
    seen, batches, count = {}, [], collections.Counter()

    def probe(pad, batch):
        srcs = [f.source_id for f in batch.frames]
        batches.append(srcs)
        for i, f in enumerate(batch.frames):
            o = f.objects
            rows = np.concatenate([o.xyxy, o.confidence[:, None], o.class_id[:, None].astype(np.float32)], 1)
            rows = rows[np.lexsort(rows.T[::-1])] if len(rows) else rows
            seen[(f.source_id, count[f.source_id])] = (rows, len(batches) - 1, i, len(srcs), len(set(srcs)))
            count[f.source_id] += 1
    r = vidpipe_run(CLIP, n, frames, ini(n), nvdec_process=1 if mode == "worker" else 0, user_probe=probe, upto=upto)
    odd = sum(1 for b in batches if len(b) != n or len(set(b)) != len(b))
    return r, seen, odd, len(batches)


if __name__ == "__main__":
    n, frames, mode, upto = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    runs = [one(n, frames, mode, upto) for _ in range(3)]
    for r, _, odd, nb in runs:
        print(json.dumps({"fps": round(r["fps"]), "objects": r["objects"], "frames": r["frames"],
                          "batches": nb, "partial_or_repeating_batches": odd}), flush=True)
    first = runs[0][1]
    for j, (_, other, _, _) in enumerate(runs[1:], 1):
        diff = [k for k in first if k in other and (first[k][0].shape != other[k][0].shape
                                                     or not np.array_equal(first[k][0], other[k][0]))]
        counts = [k for k in diff if first[k][0].shape != other[k][0].shape]
        print(f"run 0 vs run {j}: {len(diff)} of {len(first)} frames differ, {len(counts)} in their object count")
        for k in diff[:4]:
            a, b = first[k][0], other[k][0]
            gap = float(np.abs(a - b).max()) if a.shape == b.shape else None
            print(f"  stream {k[0]} frame {k[1]}: {len(a)} / {len(b)} objects, largest difference {gap}, "
                  f"batch/place/size/streams {first[k][1:]} / {other[k][1:]}", flush=True)
