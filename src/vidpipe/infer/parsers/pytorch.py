"""Detector parsers in torch: the whole batch's candidates at once, thresholds and NMS on the
device, then one small copy of the surviving boxes to the host.

`candidates(parser, outputs, ctx)` returns (xyxy [N,K,4], scores [N,K], classes [N,K]) in
model-input pixels for the built-in parsers it knows, or None (the element then copies the output
tensors - not frames - to the host and uses the numpy parser).
"""
from __future__ import annotations

from typing import Any

import numpy as np

_grid_cache: dict = {}


def _xywh_to_xyxy(b):
    import torch
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _nanodet(p, outputs, ctx):
    import torch
    xyxy, scores, classes = [], [], []
    for score_name, box_name, stride, centers in p.levels:
        s = outputs[score_name].float()                      # [N, cells, C]
        best, cls = s.max(-1)
        d = outputs[box_name].float()
        n, cells = d.shape[:2]
        key = (id(p), stride, str(d.device))
        c = _grid_cache.get(key)
        if c is None:
            c = _grid_cache[key] = (torch.as_tensor(centers, device=d.device),
                                    torch.arange(p.reg, dtype=torch.float32, device=d.device))
        ctr, bins = c
        dist = (d.view(n, cells, 4, p.reg).softmax(-1) @ bins) * stride   # [N, cells, 4]
        xyxy.append(torch.cat([ctr - dist[..., :2], ctr + dist[..., 2:]], -1))
        scores.append(best)
        classes.append(cls)
    return torch.cat(xyxy, 1), torch.cat(scores, 1), torch.cat(classes, 1)


def _yolov8(p, outputs, ctx):
    x = outputs[p.out].float()
    if p.transposed:
        x = x.transpose(1, 2)
    best, cls = x[..., 4:].max(-1)
    return _xywh_to_xyxy(x[..., :4]), best, cls


def _yolov5(p, outputs, ctx):
    x = outputs[p.out].float()
    best, cls = (x[..., 5:] * x[..., 4:5]).max(-1)
    return _xywh_to_xyxy(x[..., :4]), best, cls


def _yolo_e2e(p, outputs, ctx):
    if p.mode != "single":
        return None
    x = outputs[p.out].float()
    return x[..., :4], x[..., 4], x[..., 5].long()


_FUNCS = {"nanodet": _nanodet, "yolov8": _yolov8, "yolov5": _yolov5, "yolo-e2e": _yolo_e2e}


def has_candidates(parser) -> bool:
    """Whether `candidates` decodes this parser's outputs on the device (built-in parsers)."""
    return getattr(parser, "name", "") in _FUNCS and not type(parser).__module__.startswith("vidpipe.infer.parsers.custom")


def candidates(parser, outputs: dict[str, Any], ctx) -> tuple | None:
    if not has_candidates(parser):
        return None
    return _FUNCS[parser.name](parser, outputs, ctx)


def select(xyxy, scores, classes, thresholds, filtered=None, nms_iou: float | None = None):
    """Keeps candidates over their class threshold (and not filtered out), then class-aware NMS
    within each frame. Returns host arrays: frame index, xyxy, score, class (score-sorted per
    frame, as the CPU path)."""
    import torch
    from torchvision.ops import batched_nms

    from ...core.tensors import to_host
    n, k = scores.shape
    cls = classes.long()
    thr = thresholds[cls.clamp(0, len(thresholds) - 1)]
    keep = scores >= thr
    if filtered is not None and len(filtered):
        keep &= ~torch.isin(cls, filtered)
    fi, ki = keep.nonzero(as_tuple=True)
    b, s, c = xyxy[fi, ki], scores[fi, ki], cls[fi, ki]
    if nms_iou is not None and len(s):
        # class-aware, never across frames. batched_nms separates groups by shifting each box by
        # group * (largest coordinate + 1) in the boxes' dtype: in float32, ids frame * 1e6 + class
        # pushed the boxes beyond 2^24, where they collapse, and NMS stopped suppressing at batch
        # >= 2. In float64 the shifted boxes stay exact (ids < 2^22 x coordinates < 2^20 << 2^53),
        # and no id has to be read back from the device.
        groups = fi * 65536 + c
        idx = batched_nms(b.double(), s.double(), groups, float(nms_iou))
        fi, b, s, c = fi[idx], b[idx], s[idx], c[idx]
    packed = torch.cat([fi[:, None].float(), b.float(), s[:, None].float(), c[:, None].float()], 1)
    host = to_host(packed)
    host = host[np.argsort(host[:, 0], kind="stable")]  # grouped by frame, score order kept within
    return host[:, 0].astype(np.int64), host[:, 1:5], host[:, 5], host[:, 6].astype(np.int64)
