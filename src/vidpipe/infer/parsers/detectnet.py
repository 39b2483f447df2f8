"""DetectNet_v2 grid (DeepStream's own TAO detectors such as TrafficCamNet, PeopleNet)."""
from __future__ import annotations

import numpy as np

from ..backends.base import TensorInfo
from .base import Detections, ParseContext, Parser, dims, register_parser


@register_parser("detectnet_v2")
class DetectNetV2(Parser):
    """coverage [1,C,gh,gw] and bbox [1,4C,gh,gw]; per cell, box = offsets from the cell centre
    normalised by 35 (DeepStream's bbox_norm) with centre offset 0.5."""

    expects = "coverage [1,classes,gh,gw] and bbox [1,4*classes,gh,gw]"
    bbox_norm = 35.0
    offset = 0.5

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        if len(outputs) != 2 or any(len(dims(o)) != 4 for o in outputs):
            raise self.mismatch(outputs, "it needs two 4-D outputs")
        a, b = outputs
        if dims(b)[1] == 4 * dims(a)[1]:
            cov, box = a, b
        elif dims(a)[1] == 4 * dims(b)[1]:
            cov, box = b, a
        else:
            raise self.mismatch(outputs, "no output has 4x the channels of the other")
        self.cov, self.box = cov.name, box.name
        self.classes = dims(cov)[1]
        gh, gw = dims(cov)[2], dims(cov)[3]
        self.stride_x = ctx.network_width / gw
        self.stride_y = ctx.network_height / gh
        self.cx = (np.arange(gw, dtype=np.float32) * self.stride_x + self.offset) / self.bbox_norm
        self.cy = (np.arange(gh, dtype=np.float32) * self.stride_y + self.offset) / self.bbox_norm

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        cov = outputs[self.cov][index]
        box = outputs[self.box][index]
        c, ys, xs = np.nonzero(cov >= ctx.min_score)
        if not len(c):
            return Detections.empty()
        n = self.bbox_norm
        x1 = (box[4 * c, ys, xs] - self.cx[xs]) * -n
        y1 = (box[4 * c + 1, ys, xs] - self.cy[ys]) * -n
        x2 = (box[4 * c + 2, ys, xs] + self.cx[xs]) * n
        y2 = (box[4 * c + 3, ys, xs] + self.cy[ys]) * n
        xyxy = np.stack([x1, y1, x2, y2], 1).astype(np.float32)
        return Detections(xyxy, cov[c, ys, xs].astype(np.float32), c.astype(np.int64))
