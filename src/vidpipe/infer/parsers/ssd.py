"""TFLite SSD with the TFLite_Detection_PostProcess op (the default model): NMS already done."""
from __future__ import annotations

import numpy as np

from ..backends.base import TensorInfo
from .base import Detections, ParseContext, Parser, dims, register_parser


@register_parser("ssd-tflite")
class SsdPostProcessed(Parser):
    clusters = True  # NMS is inside the model
    expects = ("4 outputs: boxes [1,N,4] (ymin,xmin,ymax,xmax, 0..1), classes [1,N], scores [1,N], "
               "count [1]")

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        if len(outputs) != 4:
            raise self.mismatch(outputs, f"it has {len(outputs)} outputs, not 4")
        boxes = [o for o in outputs if len(dims(o)) == 3 and dims(o)[-1] == 4]
        count = [o for o in outputs if len(dims(o)) == 1]
        pairs = [o for o in outputs if len(dims(o)) == 2]
        if len(boxes) != 1 or len(count) != 1 or len(pairs) != 2:
            raise self.mismatch(outputs, "no boxes [1,N,4] + two [1,N] + count [1] layout")
        self.boxes, self.count = boxes[0].name, count[0].name
        # TFLite names them PostProcess, :1 classes, :2 scores; else take the model's order
        named = sorted(pairs, key=lambda o: o.name)
        self.classes, self.scores = named[0].name, named[1].name

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        n = int(outputs[self.count].reshape(-1)[index])
        boxes = outputs[self.boxes][index][:n]
        xyxy = np.empty((n, 4), np.float32)
        xyxy[:, 0] = boxes[:, 1] * ctx.network_width
        xyxy[:, 1] = boxes[:, 0] * ctx.network_height
        xyxy[:, 2] = boxes[:, 3] * ctx.network_width
        xyxy[:, 3] = boxes[:, 2] * ctx.network_height
        return Detections(xyxy, outputs[self.scores][index][:n].astype(np.float32),
                          outputs[self.classes][index][:n].astype(np.int64))
