"""A constant-velocity Kalman filter on (cx, cy, aspect, height), batched over tracks.

The same model as DeepSORT/ByteTrack (state: the four coordinates and their velocities; noise
scales with each box's height). Its matrices never couple one coordinate with another: the
transition only adds each velocity to its position, and the process and measurement noises are
diagonal. So the 8x8 covariance is four independent 2x2 blocks, and we keep just those:
cov [T,4,3] = (position variance, position-velocity covariance, velocity variance) for cx, cy,
aspect, height. Prediction and correction are then a dozen element-wise array operations, with
no matrix products or solves: the same numbers as the 8x8 form (to rounding) at a fraction of
the cost for the few tracks of one stream.
"""
from __future__ import annotations

import numpy as np

W_POS, W_VEL = 1.0 / 20, 1.0 / 160
_HEIGHT = np.array([1.0, 1.0, 0.0, 1.0])           # which coordinates' noise scales with the height
_Q_POS = W_POS ** 2 * _HEIGHT                      # process noise per squared height ...
_Q_POS0 = np.array([0.0, 0.0, 1e-2 ** 2, 0.0])     # ... plus a constant for the aspect ratio
_Q_VEL = W_VEL ** 2 * _HEIGHT
_Q_VEL0 = np.array([0.0, 0.0, 1e-5 ** 2, 0.0])
_R0 = np.array([0.0, 0.0, 1e-1 ** 2, 0.0])         # measurement noise (positions: _Q_POS)


def xyxy_to_xyah(b: np.ndarray) -> np.ndarray:
    out = np.empty((len(b), 4))
    out[:, :2] = (b[:, :2] + b[:, 2:]) / 2
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    out[:, 2] = (b[:, 2] - b[:, 0]) / h
    out[:, 3] = h
    return out


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    out = np.empty((len(m), 4))
    half = np.empty((len(m), 2))
    half[:, 0] = m[:, 2] * m[:, 3] / 2
    half[:, 1] = m[:, 3] / 2
    np.subtract(m[:, :2], half, out=out[:, :2])
    np.add(m[:, :2], half, out=out[:, 2:])
    return out


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means [n,8] (zero velocity) and covariances [n,4,3] for new tracks."""
    n = len(xyah)
    mean = np.zeros((n, 8))
    mean[:, :4] = xyah
    h2 = xyah[:, 3:4] ** 2
    cov = np.zeros((n, 4, 3))
    cov[:, :, 0] = 4 * h2 * _Q_POS + _Q_POS0          # (2 * W_POS * h)^2; aspect 1e-2^2
    cov[:, :, 2] = 100 * h2 * _Q_VEL + _Q_VEL0        # (10 * W_VEL * h)^2; aspect 1e-5^2
    return mean, cov


# Below SMALL tracks, plain Python floats beat a dozen array operations on [1,4] arrays. The
# scalar forms repeat the array forms' operations in the same order, so results are identical to
# the last bit whichever path runs (a track's numbers must not depend on how many share a step).
SMALL = 3
_QP, _QP0, _QV, _QV0, _R0L = (v.tolist() for v in (_Q_POS, _Q_POS0, _Q_VEL, _Q_VEL0, _R0))


def _predict_scalar(mean: np.ndarray, cov: np.ndarray) -> None:
    for t, (m, c) in enumerate(zip(mean.tolist(), cov.tolist())):
        h2 = m[3] * m[3]
        for i in range(4):
            pxx, pxv, pvv = c[i]
            c[i] = [pxx + (2 * pxv + pvv + (h2 * _QP[i] + _QP0[i])), pxv + pvv, pvv + (h2 * _QV[i] + _QV0[i])]
            m[i] += m[i + 4]
        mean[t], cov[t] = m, c


def _update_scalar(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> None:
    for t, (m, c, z) in enumerate(zip(mean.tolist(), cov.tolist(), xyah.tolist())):
        h2 = m[3] * m[3]
        for i in range(4):
            pxx, pxv, pvv = c[i]
            s = pxx + (h2 * _QP[i] + _R0L[i])
            k_pos, k_vel = pxx / s, pxv / s
            innov = z[i] - m[i]
            m[i] += k_pos * innov
            m[i + 4] += k_vel * innov
            c[i] = [pxx - k_pos * pxx, pxv - k_vel * pxx, pvv - k_vel * pxv]
        mean[t], cov[t] = m, c


def predict(mean: np.ndarray, cov: np.ndarray) -> None:
    """One frame ahead, in place."""
    if not len(mean):
        return
    if len(mean) < SMALL:
        return _predict_scalar(mean, cov)
    h2 = mean[:, 3:4] ** 2
    pxx, pxv, pvv = cov[:, :, 0], cov[:, :, 1], cov[:, :, 2]
    # F P F^T + Q for each block F = [[1, 1], [0, 1]]: old values on the right throughout
    pxx += 2 * pxv + pvv + (h2 * _Q_POS + _Q_POS0)
    pxv += pvv
    pvv += h2 * _Q_VEL + _Q_VEL0
    mean[:, :4] += mean[:, 4:]


def update(mean: np.ndarray, cov: np.ndarray, xyah: np.ndarray) -> None:
    """Corrects (mean, cov) in place with measurements `xyah` [N,4] (one per row)."""
    if len(mean) < SMALL:
        return _update_scalar(mean, cov, xyah)
    pxx, pxv, pvv = cov[:, :, 0], cov[:, :, 1], cov[:, :, 2]
    s = pxx + (mean[:, 3:4] ** 2 * _Q_POS + _R0)   # innovation variance per coordinate
    k_pos = pxx / s                                # Kalman gain, position and velocity rows
    k_vel = pxv / s
    innov = xyah - mean[:, :4]
    mean[:, :4] += k_pos * innov
    mean[:, 4:] += k_vel * innov
    # P - K S K^T, with K S = (pxx, pxv): old values on the right throughout
    pvv -= k_vel * pxv
    pxv -= k_vel * pxx
    pxx -= k_pos * pxx
