"""The baseline `vidpipe bench --device cuda` counts against: what a capable Python user writes by
hand for N streams on one GPU with the same libraries (PyNvVideoCodec, torch, torchvision) and
the same model backend (fp16, CUDA graphs, batch N).

- one decoder thread per stream (PyNvVideoCodec), NV12 frames cloned off the decoder's surfaces;
- the main loop takes one frame per stream, stacks the NV12 frames, resizes the luma and chroma
  planes to the model size, then converts the whole batch to normalised BGR (BT.601) at once;
- the model at batch N; NanoDet decoding in torch; thresholds and class-aware NMS for the whole
  batch (torchvision batched_nms, dense group ids); one host copy of the boxes per batch.

It returns steady-state FPS and the objects found per frame, which the bench compares with
vidpipe's (same model, same thresholds) so a fast wrong answer fails the run.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np


def batched_loop(clip: str, streams: int, frames: int, backend, parser, ctx, *, size: int = 416,
                 threshold: float = 0.4, nms_iou: float = 0.6) -> dict:
    import torch
    import torch.nn.functional as F
    from torchvision.ops import batched_nms

    from ..gpu.decode import NvDecReader
    from ..infer.parsers.pytorch import candidates

    queues = [queue.Queue(maxsize=4) for _ in range(streams)]

    def decode(i: int) -> None:  # frames from one file, looped until `frames` are out
        n = 0
        while n < frames:
            for nv12 in NvDecReader(clip).frames_nv12():
                queues[i].put(nv12.clone())
                n += 1
                if n >= frames:
                    break
        queues[i].put(None)

    threads = [threading.Thread(target=decode, args=(i,), daemon=True) for i in range(streams)]
    [t.start() for t in threads]
    mean = torch.tensor([103.53, 116.28, 123.675], device="cuda").view(1, 3, 1, 1)
    stamps, per_frame = [], []
    while True:
        got = [q.get() for q in queues]
        if any(g is None for g in got):
            break
        nv12 = torch.stack(got)                                        # [N, H*3/2, W] uint8
        h = nv12.shape[1] * 2 // 3
        y = F.interpolate(nv12[:, None, :h].float(), size=(size, size), mode="bilinear", align_corners=False)
        uv = nv12[:, h:].reshape(len(got), h // 2, -1, 2).permute(0, 3, 1, 2).float()
        uv = F.interpolate(uv, size=(size, size), mode="bilinear", align_corners=False) - 128.0
        luma = (y - 16.0) * 1.164
        r = luma + 1.596 * uv[:, 1:2]
        g = luma - 0.391 * uv[:, 0:1] - 0.813 * uv[:, 1:2]
        b = luma + 2.018 * uv[:, 0:1]
        x = ((torch.cat([b, g, r], 1).clamp(0, 255) - mean) * 0.017)  # BGR, as the model wants
        out = backend.run_torch(x)
        boxes, scores, classes = candidates(parser, out, ctx)
        fi, ki = (scores >= threshold).nonzero(as_tuple=True)
        c = classes[fi, ki]
        groups = fi * 65536 + c                                        # float64 below: exact
        keep = batched_nms(boxes[fi, ki].double(), scores[fi, ki].double(), groups, nms_iou)
        kept = torch.cat([fi[keep, None].float(), boxes[fi, ki][keep].float(), scores[fi, ki][keep, None].float()], 1)
        host = kept.cpu().numpy()                                      # the one copy to the host
        per_frame.append(np.bincount(host[:, 0].astype(np.int64), minlength=len(got)))
        stamps.append((time.perf_counter(), len(got)))
    [t.join() for t in threads]
    total = sum(n for _, n in stamps)
    fps = (total - stamps[0][1]) / (stamps[-1][0] - stamps[0][0]) if len(stamps) > 1 else float("nan")
    counts = np.concatenate(per_frame) if per_frame else np.zeros(0)
    return {"fps": fps, "frames": total, "objects": int(counts.sum()),
            "objects_per_frame": float(counts.mean()) if len(counts) else 0.0}
