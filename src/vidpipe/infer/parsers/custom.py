"""'none' (no parsing: keep raw tensors as meta) and user Python parse functions."""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Callable

import numpy as np

from ...core.meta import ObjectMeta
from ...errors import ModelError
from .base import Detections, ParseContext, Parser, register_parser


@register_parser("none")
class NoParse(Parser):
    """Produces no objects; use with output-tensor-meta=1 and parse in a probe."""

    expects = "anything"

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        return Detections.empty()


class FunctionParser(Parser):
    """Wraps `fn(outputs, ctx) -> detections` where `outputs` maps tensor names to this frame's
    arrays (batch axis removed) and the result is either a Detections, a list of
    (class_id, confidence, x1, y1, x2, y2) tuples, or a list of ObjectMeta, in model-input pixels.
    vidpipe then applies thresholds, clustering and maps boxes to frame pixels."""

    expects = "whatever your function reads"

    def __init__(self, fn: Callable[..., Any], name: str = ""):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "python")

    def parse(self, outputs: dict[str, np.ndarray], index: int, ctx: ParseContext) -> Detections:
        per_frame = {k: v[index] for k, v in outputs.items()}
        res = self.fn(per_frame, ctx)
        if isinstance(res, Detections):
            return res
        res = list(res or [])
        if not res:
            return Detections.empty()
        if isinstance(res[0], ObjectMeta):
            return Detections(np.array([o.bbox.as_xyxy() for o in res], np.float32),
                              np.array([o.confidence for o in res], np.float32),
                              np.array([o.class_id for o in res], np.int64))
        arr = np.asarray(res, np.float64).reshape(-1, 6)
        return Detections(arr[:, 2:6].astype(np.float32), arr[:, 1].astype(np.float32), arr[:, 0].astype(np.int64))


def load_function(spec: str, base_dir: str = "") -> Callable[..., Any]:
    """'pkg.module:function' or 'path/to/file.py:function'."""
    if ":" not in spec:
        raise ModelError(f"parser '{spec}' is neither a built-in name nor 'module:function'")
    mod_name, func = spec.rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            path = mod_name if os.path.isabs(mod_name) else os.path.join(base_dir, mod_name)
            s = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
            if s is None or s.loader is None or not os.path.exists(path):
                raise ModelError(f"parse function file {path} not found")
            module = importlib.util.module_from_spec(s)
            s.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except ImportError as e:
        raise ModelError(f"cannot import parse function module '{mod_name}': {e}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ModelError(f"'{mod_name}' has no function '{func}'")
    return fn
