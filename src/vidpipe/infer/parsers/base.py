"""Parser interface and registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...errors import ModelError
from ..backends.base import TensorInfo


@dataclass
class Detections:
    """Candidates of one frame in model-input pixels: xyxy [K,4], scores [K], classes [K]."""

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def stack(cls, per_item: list["Detections"]) -> tuple[np.ndarray, "Detections"]:
        """Several items' candidates as one: (item index of each row, all rows)."""
        item = np.repeat(np.arange(len(per_item)), [len(d) for d in per_item])
        if not per_item:
            return item, cls.empty()
        return item, cls(*(np.concatenate(c) for c in zip(*((d.xyxy, d.scores, d.classes) for d in per_item))))

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, m: Any) -> "Detections":
        return Detections(self.xyxy[m], self.scores[m], self.classes[m])


@dataclass
class ParseContext:
    """What a parser may need besides tensors."""

    network_width: int
    network_height: int
    num_classes: int = 0
    min_score: float = 0.0   # lowest pre-cluster threshold of any class: candidates below it go
    extra: dict[str, Any] = field(default_factory=dict)


class Parser:
    """Subclasses set `name`, `kind` ("detector" or "classifier"), and implement `check` and `parse`.

    `parse(outputs, index, ctx)` gets every output tensor of the batch and the frame's index in it.
    """

    name = ""
    kind = "detector"
    expects = ""  # one line saying which tensors it needs, for error messages
    clusters = False  # True when the model already did NMS

    def check(self, outputs: list[TensorInfo], ctx: ParseContext) -> None:
        """Raise via self.mismatch(...) when the outputs do not fit."""

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Any:
        raise NotImplementedError

    def mismatch(self, outputs: list[TensorInfo], why: str) -> ModelError:
        listed = "\n  ".join(map(str, outputs))
        return ModelError(f"the model's outputs do not fit parser '{self.name}': {why}.\n"
                          f"Parser '{self.name}' expects {self.expects}.\nThe model has:\n  {listed}\n"
                          f"Choose another parser (parser=... in the config; one of "
                          f"{', '.join(parser_names())}) or a Python parse function.")


_PARSERS: dict[str, Callable[[], Parser]] = {}


def register_parser(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        _PARSERS[name] = cls
        return cls
    return deco


def parser_names() -> list[str]:
    return sorted(_PARSERS)


def get_parser(name: str) -> Parser:
    if name not in _PARSERS:
        raise ModelError(f"unknown parser '{name}'; built-in parsers: {', '.join(parser_names())}, "
                         "or 'module:function' / 'file.py:function' for your own")
    return _PARSERS[name]()


def dims(t: TensorInfo) -> list[int]:
    """Shape with dynamic dims as -1."""
    return [d if isinstance(d, int) and d > 0 else -1 for d in t.shape]


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b, dtype=np.float32)
    out[:, 0] = b[:, 0] - b[:, 2] / 2
    out[:, 1] = b[:, 1] - b[:, 3] / 2
    out[:, 2] = b[:, 0] + b[:, 2] / 2
    out[:, 3] = b[:, 1] + b[:, 3] / 2
    return out
