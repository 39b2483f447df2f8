"""NanoDet (GFL head): per stride, class scores after sigmoid [1,cells,classes] and box
distributions [1,cells,4*(reg_max+1)] (left, top, right, bottom)."""
from __future__ import annotations

import numpy as np

from ..backends.base import TensorInfo
from .base import Detections, ParseContext, Parser, dims, register_parser


@register_parser("nanodet")
class NanoDet(Parser):
    expects = ("per stride (8, 16, 32[, 64]): scores [1,cells,classes] and box distributions "
               "[1,cells,4*(reg_max+1)], cells = (H/stride)*(W/stride) in row-major order")
    strides = (8, 16, 32, 64)

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        if len(outputs) < 2 or len(outputs) % 2 or any(len(dims(o)) != 3 for o in outputs):
            raise self.mismatch(outputs, "it needs pairs of 3-D outputs")
        cells = {}
        for s in self.strides:
            gh, gw = -(-ctx.network_height // s), -(-ctx.network_width // s)
            cells[gh * gw] = (s, gh, gw)
        last = sorted({dims(o)[2] for o in outputs})
        if len(last) != 2:
            raise self.mismatch(outputs, "expected two kinds of outputs (scores, box distributions)")
        box_dim = next((d for d in last if d % 4 == 0 and d // 4 >= 2 and (not ctx.num_classes or d != ctx.num_classes)), None)
        if ctx.num_classes and ctx.num_classes in last:
            box_dim = next(d for d in last if d != ctx.num_classes)
        if box_dim is None:
            raise self.mismatch(outputs, "no output whose last axis is 4*(reg_max+1)")
        self.reg = box_dim // 4
        self.levels = []
        for o in (o for o in outputs if dims(o)[2] != box_dim):
            n = dims(o)[1]
            if n not in cells:
                raise self.mismatch(outputs, f"{o.name} has {n} cells; no stride fits "
                                    f"{ctx.network_width}x{ctx.network_height}")
            box = [b for b in outputs if dims(b)[2] == box_dim and dims(b)[1] == n]
            if len(box) != 1:
                raise self.mismatch(outputs, f"no box output with {n} cells for {o.name}")
            s, gh, gw = cells[n]
            ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
            centers = np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1).astype(np.float32)
            self.levels.append((o.name, box[0].name, s, centers))
        self.bins = np.arange(self.reg, dtype=np.float32)

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        all_xyxy, all_s, all_c = [], [], []
        for score_name, box_name, stride, centers in self.levels:
            scores = outputs[score_name][index]
            cls = scores.argmax(1)
            best = scores[np.arange(len(scores)), cls]
            keep = np.nonzero(best >= ctx.min_score)[0]
            if not len(keep):
                continue
            d = outputs[box_name][index][keep].reshape(-1, 4, self.reg).astype(np.float32)
            d = np.exp(d - d.max(-1, keepdims=True))
            d /= d.sum(-1, keepdims=True)
            dist = (d @ self.bins) * stride  # [K,4]: left, top, right, bottom
            c = centers[keep]
            all_xyxy.append(np.stack([c[:, 0] - dist[:, 0], c[:, 1] - dist[:, 1],
                                      c[:, 0] + dist[:, 2], c[:, 1] + dist[:, 3]], 1))
            all_s.append(best[keep])
            all_c.append(cls[keep])
        if not all_s:
            return Detections.empty()
        return Detections(np.concatenate(all_xyxy).astype(np.float32), np.concatenate(all_s).astype(np.float32),
                          np.concatenate(all_c).astype(np.int64))
