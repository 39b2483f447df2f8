"""Classifier: one output of class scores per image; softmax applied unless they are already
probabilities."""
from __future__ import annotations

import numpy as np

from ..backends.base import TensorInfo
from .base import ParseContext, Parser, dims, register_parser


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@register_parser("classifier")
class Softmax(Parser):
    kind = "classifier"
    expects = "one output [1, classes] (or [1, classes, 1, 1])"

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        if len(outputs) != 1:
            raise self.mismatch(outputs, f"it has {len(outputs)} outputs")
        d = dims(outputs[0])
        if len(d) < 2 or any(v != 1 for v in d[2:]):
            raise self.mismatch(outputs, "the output is not [1, classes]")
        self.out = outputs[0].name
        self.classes = d[1]

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> np.ndarray:
        """Probabilities [classes]."""
        v = outputs[self.out][index].reshape(-1).astype(np.float32)
        if v.min() < 0 or abs(float(v.sum()) - 1.0) > 1e-3:
            v = softmax(v)
        return v
