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


SELECT_ROUNDS = 10


def select_fixed(xyxy, scores, classes, thresholds, filtered=None, nms_iou: float | None = None, k: int = 256,
                 rounds: int = SELECT_ROUNDS):
    """`select` with fixed shapes and no host synchronisation, so a CUDA graph can hold it.

    Per frame the k best candidates over their class threshold (topk: score order), then greedy
    class-aware NMS as a fixed point: a box is kept when no kept box ranking above it, of its
    class, overlaps it by IoU > nms_iou. Starting from "all kept", each round settles at least the
    next box in score order, and the greedy result is the only fixed point, so a round that
    changes nothing has found exactly what torchvision's NMS keeps. `rounds` rounds run; frames
    still changing in the last one, and frames with more than k candidates, are counted in
    `status` and the caller runs `select` for the batch instead.

    Returns (table [N, k, 7] float32: x1 y1 x2 y2 score class kept, status [2] float32:
    (frames over k candidates, frames not settled))."""
    import torch
    n, m = scores.shape
    k = min(k, m)
    cls = classes.long()
    ok = scores >= thresholds[cls.clamp(0, len(thresholds) - 1)]
    if filtered is not None and len(filtered):
        ok &= ~torch.isin(cls, filtered)
    top, idx = torch.where(ok, scores.float(), float("-inf")).topk(k, dim=1)
    valid = top > float("-inf")
    box = xyxy.gather(1, idx[..., None].expand(n, k, 4))
    c = cls.gather(1, idx)
    over = ok.sum(1) > k
    if nms_iou is None:
        kept, unsettled = valid, torch.zeros_like(over)
    else:
        b = box.double()  # as `select`: IoU in float64
        lt = torch.maximum(b[:, :, None, :2], b[:, None, :, :2])
        rb = torch.minimum(b[:, :, None, 2:], b[:, None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        area = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        iou = inter / (area[:, :, None] + area[:, None, :] - inter)
        above = torch.ones(k, k, dtype=torch.bool, device=b.device).tril(-1)  # [i, j]: j ranks above i
        suppresses = (iou > nms_iou) & (c[:, :, None] == c[:, None, :]) & above & valid[:, None, :]
        kept = prev = valid
        for _ in range(rounds):
            prev, kept = kept, valid & ~(suppresses & kept[:, None, :]).any(2)
        unsettled = (kept != prev).any(1)
    table = torch.cat([box.float(), top[..., None].float(), c[..., None].float(), kept[..., None].float()], 2)
    return table, torch.stack([over.sum(), unsettled.sum()]).float()


def read_table(table: np.ndarray) -> tuple:
    """select_fixed's table on the host -> (frame index, xyxy, score, class) of the kept rows, in
    the order `select` gives them: by frame, score order within."""
    fi, ki = np.nonzero(table[..., 6] > 0)
    rows = table[fi, ki]
    return fi.astype(np.int64), rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)
