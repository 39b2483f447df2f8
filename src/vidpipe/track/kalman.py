"""A constant-velocity Kalman filter on (cx, cy, aspect, height), batched over tracks.

The same model as DeepSORT/ByteTrack, written for arrays of tracks: means [T,8], covariances
[T,8,8]; noise scales with each box's height.
"""
from __future__ import annotations

import numpy as np

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)
W_POS, W_VEL = 1.0 / 20, 1.0 / 160


def xyxy_to_xyah(b: np.ndarray) -> np.ndarray:
    w = b[:, 2] - b[:, 0]
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, w / h, h], 1)


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    w = m[:, 2] * m[:, 3]
    return np.stack([m[:, 0] - w / 2, m[:, 1] - m[:, 3] / 2, m[:, 0] + w / 2, m[:, 1] + m[:, 3] / 2], 1)


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(xyah)
    mean = np.zeros((n, 8))
    mean[:, :4] = xyah
    h = xyah[:, 3]
    std = np.stack([2 * W_POS * h, 2 * W_POS * h, np.full(n, 1e-2), 2 * W_POS * h,
                    10 * W_VEL * h, 10 * W_VEL * h, np.full(n, 1e-5), 10 * W_VEL * h], 1)
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std ** 2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, steps: np.ndarray | int = 1) -> None:
    """In place; `steps` frames ahead (per track or for all)."""
    if not len(mean):
        return
    if isinstance(steps, int) and steps == 1:
        h = mean[:, 3]
        q = np.empty((len(h), 8))
        q[:, [0, 1, 3]] = (W_POS * h)[:, None] ** 2
        q[:, 2] = 1e-4
        q[:, [4, 5, 7]] = (W_VEL * h)[:, None] ** 2
        q[:, 6] = 1e-10
        mean[:, :4] += mean[:, 4:]
        c = _F @ cov @ _F.T
        idx = np.arange(8)
        c[:, idx, idx] += q
        cov[...] = c
        return
    steps = np.broadcast_to(np.asarray(steps, np.int64), (len(mean),))
    for k in range(int(steps.max()) if len(steps) else 0):
        sel = steps > k
        if not sel.any():
            break
        m, c = mean[sel], cov[sel]
        h = m[:, 3]
        q = np.stack([W_POS * h, W_POS * h, np.full(len(h), 1e-2), W_POS * h,
                      W_VEL * h, W_VEL * h, np.full(len(h), 1e-5), W_VEL * h], 1) ** 2
        m = m @ _F.T
        c = _F @ c @ _F.T
        idx = np.arange(8)
        c[:, idx, idx] += q
        mean[sel], cov[sel] = m, c


def update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns corrected (mean, cov) for rows matched to measurements `xyah` [N,4]."""
    h = mean[:, 3]
    r = np.stack([W_POS * h, W_POS * h, np.full(len(h), 1e-1), W_POS * h], 1) ** 2
    s = cov[:, :4, :4].copy()
    idx = np.arange(4)
    s[:, idx, idx] += r
    pht = cov[:, :, :4]                          # cov @ H.T
    gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)  # [N,8,4]
    innov = xyah - mean[:, :4]
    new_mean = mean + np.einsum("nij,nj->ni", gain, innov)
    new_cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    return new_mean, new_cov
