"""ONNX Runtime backend (CPU; CUDA/TensorRT execution providers when installed and asked for)."""
from __future__ import annotations

import logging
import os

import numpy as np

from ...errors import ModelError
from .base import Backend, TensorInfo

log = logging.getLogger("vidpipe")
_DTYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
           "tensor(float16)": np.float16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
           "tensor(double)": np.float64, "tensor(bool)": np.bool_}


class OnnxBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str, *, device: str = "cpu", num_threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("onnxruntime is not installed: pip install onnxruntime") from None
        so = ort.SessionOptions()
        so.intra_op_num_threads = num_threads or (os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            dev_id = int(device.split(":")[1]) if ":" in device else 0
            wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
            if not wanted:
                log.warning("onnxruntime has no CUDA provider here; running %s on the CPU", path)
            providers = [(p, {"device_id": dev_id}) for p in wanted] + providers
        try:
            self.session = ort.InferenceSession(path, so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: onnxruntime cannot load the model: {e}") from None
        self.inputs = [TensorInfo(i.name, tuple(i.shape), np.dtype(_DTYPES.get(i.type, np.float32)))
                       for i in self.session.get_inputs()]
        self.outputs = [TensorInfo(o.name, tuple(o.shape), np.dtype(_DTYPES.get(o.type, np.float32)))
                        for o in self.session.get_outputs()]
        if len(self.inputs) != 1:
            raise ModelError(f"{path}: vidpipe feeds models with exactly one image input; this one has "
                             f"{len(self.inputs)}: {self.describe()}")
        b = self.inputs[0].shape[0]
        self.max_batch = b if isinstance(b, int) and b > 0 else None
        self._in = self.inputs[0].name
        self._out = [o.name for o in self.outputs]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        res = self.session.run(self._out, {self._in: x})
        return dict(zip(self._out, res))
