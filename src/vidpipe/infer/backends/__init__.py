"""Inference backends behind one small interface (see base.Backend)."""
from __future__ import annotations

import os

from ...errors import ModelError
from .base import Backend, TensorInfo

__all__ = ["Backend", "TensorInfo", "create_backend"]


def create_backend(model_file: str, *, backend: str = "auto", device: str = "cpu",
                   num_threads: int = 0, precision: str = "fp32", max_batch: int = 64) -> Backend:
    """Opens `model_file` with the backend that fits its type (or the one named)."""
    if not model_file:
        raise ModelError("no model file given: set onnx-file/model-file in the config or --model")
    if not os.path.exists(model_file):
        raise ModelError(f"{model_file}: model file not found")
    ext = os.path.splitext(model_file)[1].lower()
    if backend == "auto":
        gpu_onnx = ext == ".onnx" and device.startswith("cuda")
        backend = "torch" if gpu_onnx else {".onnx": "onnxruntime", ".tflite": "litert"}.get(ext, "")
        if not backend:
            raise ModelError(f"{model_file}: unknown model type '{ext}'; vidpipe reads .onnx and .tflite "
                             "(or set backend=onnxruntime|litert)")
    if backend == "onnxruntime":
        from .onnx import OnnxBackend
        return OnnxBackend(model_file, device=device, num_threads=num_threads)
    if backend == "torch":
        if ext != ".onnx":
            raise ModelError(f"{model_file}: backend=torch reads ONNX models (.onnx)")
        from .pytorch import TorchBackend
        return TorchBackend(model_file, device=device, precision=precision, max_batch=max_batch)
    if backend == "litert":
        from .litert import LiteRTBackend
        return LiteRTBackend(model_file, num_threads=num_threads)
    raise ModelError(f"unknown backend '{backend}'; allowed: auto, onnxruntime, litert, torch")
