"""YOLO families: v5 (objectness), v8/v11 (raw head), end-to-end exports (NMS inside), YOLOX."""
from __future__ import annotations

import numpy as np

from ..backends.base import TensorInfo
from .base import Detections, ParseContext, Parser, dims, register_parser, xywh_to_xyxy


def _single(parser: Parser, outputs: list[TensorInfo]) -> TensorInfo:
    if len(outputs) != 1 or len(dims(outputs[0])) != 3:
        raise parser.mismatch(outputs, "it needs exactly one 3-D output")
    return outputs[0]


def _best(scores: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cls = scores.argmax(1)
    best = scores[np.arange(len(scores)), cls]
    keep = np.nonzero(best >= min_score)[0]
    return keep, best[keep], cls[keep]


@register_parser("yolov8")
class YoloV8(Parser):
    """Raw head of YOLOv8/v11 (also v9): [1, 4+classes, anchors] (or transposed); cx,cy,w,h in
    input pixels followed by class scores, no objectness."""

    expects = "one output [1, 4+classes, anchors] or [1, anchors, 4+classes]"

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        t = _single(self, outputs)
        _, a, b = dims(t)
        nc = ctx.num_classes
        if nc:
            if a == 4 + nc:
                self.transposed = True
            elif b == 4 + nc:
                self.transposed = False
            else:
                raise self.mismatch(outputs, f"no axis of size 4+{nc} (num-detected-classes={nc})")
        else:
            self.transposed = 0 < a < b
        self.out = t.name

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        x = outputs[self.out][index]
        if self.transposed:
            x = x.T
        keep, score, cls = _best(x[:, 4:], ctx.min_score)
        return Detections(xywh_to_xyxy(x[keep, :4]), score.astype(np.float32), cls.astype(np.int64))


@register_parser("yolov5")
class YoloV5(Parser):
    """YOLOv5/v7 (and YOLOX exported with decoding): [1, anchors, 5+classes] = cx,cy,w,h,
    objectness, class scores; score = objectness x class score."""

    expects = "one output [1, anchors, 5+classes]"

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        t = _single(self, outputs)
        last = dims(t)[2]
        if last < 6 or (ctx.num_classes and last != 5 + ctx.num_classes):
            raise self.mismatch(outputs, f"last axis is {last}, not 5+classes")
        self.out = t.name

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        x = outputs[self.out][index]
        obj = x[:, 4]
        pre = np.nonzero(obj >= ctx.min_score)[0]
        x = x[pre]
        keep, score, cls = _best(x[:, 5:] * x[:, 4:5], ctx.min_score)
        return Detections(xywh_to_xyxy(x[keep, :4]), score.astype(np.float32), cls.astype(np.int64))


@register_parser("yolox")
class YoloX(YoloV5):
    """YOLOX exported without decoding (the export default): raw grid offsets for strides
    8, 16, 32; xy = (raw + cell) * stride, wh = exp(raw) * stride; objectness and class scores
    already sigmoid."""

    expects = "one output [1, cells(strides 8,16,32), 5+classes]"
    strides = (8, 16, 32)

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        super().check(outputs, ctx)
        grids, strides = [], []
        for s in self.strides:
            gh, gw = ctx.network_height // s, ctx.network_width // s
            ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
            grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
            strides.append(np.full(gh * gw, s))
        self.grid = np.concatenate(grids).astype(np.float32)
        self.stride = np.concatenate(strides).astype(np.float32)[:, None]
        n = dims(outputs[0])[1]
        if n > 0 and n != len(self.grid):
            raise self.mismatch(outputs, f"{n} cells, but strides 8/16/32 on "
                                f"{ctx.network_width}x{ctx.network_height} give {len(self.grid)}")

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        x = outputs[self.out][index].astype(np.float32)
        dec = x.copy()
        dec[:, :2] = (x[:, :2] + self.grid) * self.stride
        dec[:, 2:4] = np.exp(np.clip(x[:, 2:4], -20, 20)) * self.stride
        keep, score, cls = _best(dec[:, 5:] * dec[:, 4:5], ctx.min_score)
        return Detections(xywh_to_xyxy(dec[keep, :4]), score.astype(np.float32), cls.astype(np.int64))


@register_parser("yolo-e2e")
class YoloEndToEnd(Parser):
    clusters = True
    """Exports with NMS inside: one output [1, N, 6] = x1,y1,x2,y2,score,class (YOLOv8/11 nms=True,
    YOLOv10), or four outputs num_dets [1,1], boxes [1,N,4], scores [1,N], classes [1,N]
    (EfficientNMS style). Boxes in input pixels."""

    expects = "one output [1,N,6] (x1,y1,x2,y2,score,class) or num_dets/boxes/scores/classes"

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        if len(outputs) == 1 and len(dims(outputs[0])) == 3 and dims(outputs[0])[2] in (6, 7):
            self.mode, self.out = "single", outputs[0].name
            return
        if len(outputs) == 4:
            by = {len(dims(o)): o for o in outputs}
            boxes = [o for o in outputs if len(dims(o)) == 3 and dims(o)[2] == 4]
            twos = [o for o in outputs if len(dims(o)) == 2 and dims(o)[1] != 1]
            num = [o for o in outputs if o not in boxes and o not in twos]
            if boxes and len(twos) == 2 and num and by:
                self.mode = "four"
                self.boxes, self.num = boxes[0].name, num[0].name
                named = {o.name.lower(): o.name for o in twos}
                sc = [v for k, v in named.items() if "score" in k]
                self.scores = sc[0] if sc else twos[0].name
                self.classes = next(o.name for o in twos if o.name != self.scores)
                return
        raise self.mismatch(outputs, "neither layout found")

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        if self.mode == "single":
            x = outputs[self.out][index]
            keep = x[:, 4] >= ctx.min_score
            x = x[keep]
            return Detections(x[:, :4].astype(np.float32), x[:, 4].astype(np.float32), x[:, 5].astype(np.int64))
        n = int(np.asarray(outputs[self.num]).reshape(outputs[self.num].shape[0], -1)[index, 0])
        return Detections(outputs[self.boxes][index][:n].astype(np.float32),
                          outputs[self.scores][index][:n].astype(np.float32),
                          outputs[self.classes][index][:n].astype(np.int64))
