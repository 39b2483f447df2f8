"""Is a frame's output from the graphed front end (candidates: boxes, scores, classes) the same
bits whatever its place in the batch? B decoded frames of the bench clip through the graph:
rerun, rotated by one place, a partial batch with every frame in its place, and one frame in
every place. `det` sets torch.backends.cudnn.deterministic first:

    PYTHONPATH=/tmp/site:$PWD/src python3 benchmarks/gpu/experiments/batch_place.py 16 [det]
"""
import json
import sys

import torch
from carried import CLIP, ini

if __name__ == "__main__":
    if "det" in sys.argv[2:]:
        torch.backends.cudnn.deterministic = True
    from vidpipe import make_element
    from vidpipe.gpu.decode import NvDecReader
    b = int(sys.argv[1])
    nv12s = [df.nv12.clone() for _, df in zip(range(b), NvDecReader(CLIP))]
    infer = make_element("infer", config_file_path=ini(b), device="cuda:0", workers=1)
    infer.start()
    front = infer._front
    front.batch = b
    assert front.capture(tuple(nv12s[0].shape))

    def cand(frames):
        out = front(frames)[0]
        torch.cuda.synchronize()
        return [t.clone() for t in out]

    def same(a, i, c, j):
        return all(torch.equal(x[i], y[j]) for x, y in zip(a, c))
    base = cand(nv12s)
    res = {"batch": b, "cudnn_deterministic": torch.backends.cudnn.deterministic,
           "rerun_equal": all(torch.equal(x, y) for x, y in zip(base, cand(nv12s)))}
    rotated = cand(nv12s[1:] + nv12s[:1])
    res["rotated_equal_frames"] = sum(same(base, i, rotated, (i - 1) % b) for i in range(b))
    part = nv12s[:b // 2 + 1]
    partial = cand(part)
    res["partial_equal_frames"] = [sum(same(base, i, partial, i) for i in range(len(part))), len(part)]
    one = cand([nv12s[0]] * b)
    res["one_frame_equal_places"] = sum(same(one, 0, one, i) for i in range(b))
    res["one_frame_score_spread"] = max(float((one[1][0].float() - one[1][i].float()).abs().max()) for i in range(b))
    print(json.dumps(res), flush=True)
    infer.stop()
