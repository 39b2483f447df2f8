"""Frames (or object crops) -> the model's input tensor, and the way back to frame pixels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .backends.base import TensorInfo
from .config import InferConfig


@dataclass(frozen=True, slots=True)
class Transform:
    """net = (frame - origin) * scale + pad; `to_frame` inverts it for xyxy boxes."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    origin_x: float = 0.0
    origin_y: float = 0.0

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, 0::2] = (xyxy[:, 0::2] - self.pad_x) / self.scale_x + self.origin_x
        out[:, 1::2] = (xyxy[:, 1::2] - self.pad_y) / self.scale_y + self.origin_y
        return out


class Preprocessor:
    """Resize (optionally keeping aspect with padding), colour order, scale and offsets, layout."""

    def __init__(self, info: TensorInfo, cfg: InferConfig):
        shape = list(info.shape)
        if len(shape) != 4:
            raise ModelError(f"model input {info} is not an image batch [N,C,H,W] or [N,H,W,C]")
        dims = [d if isinstance(d, int) and d > 0 else None for d in shape[1:]]
        if dims[0] in (1, 3) and dims[2] not in (1, 3):
            self.layout = "NCHW"
            c, h, w = dims
        elif dims[2] in (1, 3):
            self.layout = "NHWC"
            h, w, c = dims
        elif dims[0] in (1, 3):
            self.layout = "NCHW"
            c, h, w = dims
        else:
            raise ModelError(f"model input {info}: cannot tell the channel axis (expected 1 or 3 channels)")
        if (h is None or w is None) and len(cfg.infer_dims) == 3:
            c, h, w = cfg.infer_dims
        if h is None or w is None:
            raise ModelError(f"model input {info} has a dynamic size; set infer-dims=3;H;W in the config")
        self.channels = c or (1 if cfg.model_color_format == 2 else 3)
        self.height, self.width = int(h), int(w)
        self.dtype = np.dtype(info.dtype)
        self.color = cfg.model_color_format
        if self.color == 2 and self.channels != 1:
            raise ModelError(f"model-color-format=2 (GRAY) but the model input {info} has {self.channels} channels")
        self.keep_aspect = cfg.maintain_aspect_ratio
        self.symmetric = cfg.symmetric_padding
        self.scale = np.float32(cfg.net_scale_factor)
        self.offsets = np.asarray(cfg.offsets[: self.channels], np.float32)
        self.plain = self.scale == 1.0 and not self.offsets.any()

    def _fit(self, img: np.ndarray, out: np.ndarray) -> Transform:
        import cv2

        ih, iw = img.shape[:2]
        W, H = self.width, self.height
        if self.keep_aspect:
            s = min(W / iw, H / ih)
            nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
            px = (W - nw) // 2 if self.symmetric else 0
            py = (H - nh) // 2 if self.symmetric else 0
            out[...] = 0
            out[py:py + nh, px:px + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            return Transform(nw / iw, nh / ih, px, py)
        if (iw, ih) == (W, H):
            out[...] = img
        else:
            cv2.resize(img, (W, H), dst=out, interpolation=cv2.INTER_LINEAR)
        return Transform(W / iw, H / ih, 0, 0)

    def __call__(self, images: list[np.ndarray],
                 rois: list[tuple[int, int, int, int]] | None = None) -> tuple[np.ndarray, list[Transform]]:
        """images: RGB uint8 HxWx3; rois: optional (x1, y1, x2, y2) crop per image."""
        import cv2

        n = len(images)
        canvas = np.empty((n, self.height, self.width, 3), np.uint8)
        transforms = []
        for i, img in enumerate(images):
            ox = oy = 0
            if rois is not None:
                x1, y1, x2, y2 = rois[i]
                img = img[y1:y2, x1:x2]
                ox, oy = x1, y1
            t = self._fit(img, canvas[i])
            if ox or oy:
                t = Transform(t.scale_x, t.scale_y, t.pad_x, t.pad_y, ox, oy)
            transforms.append(t)
        if self.color == 1:
            canvas = canvas[..., ::-1]
        if self.color == 2:
            gray = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in canvas])
            x = gray[..., None]
        else:
            x = canvas
        if self.dtype == np.uint8:
            pass
        elif self.dtype == np.int8:
            x = (x.astype(np.int16) - 128).astype(np.int8)
        else:
            x = x.astype(np.float32)
            if not self.plain:
                x -= self.offsets
                x *= self.scale
            x = x.astype(self.dtype, copy=False)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x), transforms
