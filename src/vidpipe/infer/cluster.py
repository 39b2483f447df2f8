"""Clustering of candidate boxes: NMS (per class), DBSCAN, or none. Vectorised numpy."""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N,4] with every box in b [M,4] (xyxy)."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy NMS; returns kept indices by descending score. With `classes`, boxes of different
    classes never suppress each other."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    b = boxes.astype(np.float64)
    if classes is not None:  # shift each class to its own region so they never overlap (float64:
        span = float(b.max() - b.min()) + 1.0  # exact for any id, see infer/parsers/pytorch.py select())
        b = b + (np.unique(classes, return_inverse=True)[1].ravel() * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    b = b[order]
    iou = iou_matrix(b, b)
    n = len(order)
    suppressed = np.zeros(n, bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[np.asarray(keep, np.int64)]


def dbscan(boxes: np.ndarray, scores: np.ndarray, eps: float, min_boxes: int,
           classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DBSCAN with distance 1 - IoU. Each cluster becomes one box: the score-weighted mean of its
    members, with the members' best score. Noise (clusters smaller than min_boxes) is dropped.
    Returns (boxes, scores, classes)."""
    n = len(boxes)
    if n == 0:
        return boxes[:0], scores[:0], (classes[:0] if classes is not None else np.zeros(0, np.int64))
    cls = classes if classes is not None else np.zeros(n, np.int64)
    near = (iou_matrix(boxes, boxes) >= 1.0 - eps) & (cls[:, None] == cls[None, :])
    core = near.sum(1) >= max(1, min_boxes)
    label = np.full(n, -1, np.int64)
    k = 0
    for i in range(n):
        if label[i] >= 0 or not core[i]:
            continue
        stack = [i]
        label[i] = k
        while stack:
            j = stack.pop()
            if not core[j]:
                continue
            for m in np.nonzero(near[j] & (label < 0))[0]:
                label[m] = k
                stack.append(m)
        k += 1
    out_b = np.zeros((k, 4), np.float32)
    out_s = np.zeros(k, np.float32)
    out_c = np.zeros(k, np.int64)
    for c in range(k):
        m = label == c
        w = scores[m].astype(np.float64)
        out_b[c] = (boxes[m] * w[:, None]).sum(0) / max(w.sum(), 1e-9)
        out_s[c] = scores[m].max()
        out_c[c] = cls[m][0]
    return out_b, out_s, out_c
