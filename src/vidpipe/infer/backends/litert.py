"""LiteRT (TensorFlow Lite) backend through ai-edge-litert.

TFLite models usually have a fixed batch of 1. For batches, the backend keeps a small pool of
interpreters and runs frames on them in parallel threads (invoke releases the GIL), which uses
the cores better than one interpreter with several threads.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...errors import ModelError
from .base import Backend, TensorInfo


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:  # pragma: no cover - fallbacks for machines with TF or tflite-runtime
        from tflite_runtime.interpreter import Interpreter
        return Interpreter
    except ImportError:
        raise ModelError("no TFLite runtime: pip install ai-edge-litert") from None


class LiteRTBackend(Backend):
    name = "litert"

    def __init__(self, path: str, *, num_threads: int = 0, pool_size: int = 0):
        cls = _interpreter_class()
        cores = os.cpu_count() or 1
        self.num_threads = num_threads or cores
        self._path, self._cls = path, cls
        try:
            first = self._make(self.num_threads)
        except ValueError as e:
            raise ModelError(f"{path}: LiteRT cannot load the model: {e}") from None
        ins, outs = first.get_input_details(), first.get_output_details()
        if len(ins) != 1:
            raise ModelError(f"{path}: vidpipe feeds models with exactly one image input; this one has {len(ins)}")
        self.inputs = [TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"])) for d in ins]
        self.outputs = [TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"])) for d in outs]
        self._in_index = ins[0]["index"]
        self._out_index = [(d["name"], d["index"]) for d in outs]
        self.max_batch = None  # batches are split over the interpreter pool
        self._single = first
        self._pool_size = pool_size or min(cores, 4)
        self._pool: list = []
        self._free: list = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _make(self, threads: int):
        it = self._cls(model_path=self._path, num_threads=threads)
        it.allocate_tensors()
        return it

    def _invoke(self, it, x1: np.ndarray) -> dict[str, np.ndarray]:
        it.set_tensor(self._in_index, x1)
        it.invoke()
        return {name: it.get_tensor(idx).copy() for name, idx in self._out_index}

    def _borrow(self):
        with self._lock:
            if self._free:
                return self._free.pop()
        it = self._make(1)
        with self._lock:
            self._pool.append(it)
        return it

    def _run_pooled(self, x1: np.ndarray) -> dict[str, np.ndarray]:
        it = self._borrow()
        try:
            return self._invoke(it, x1)
        finally:
            with self._lock:
                self._free.append(it)

    concurrent_calls = 1  # set > 1 when several threads call run() at once (infer workers)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        n = x.shape[0]
        if n == 1 and self.concurrent_calls > 1:
            parts = [self._run_pooled(x[0:1])]
        elif n == 1:
            parts = [self._invoke(self._single, x[0:1])]
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._pool_size, thread_name_prefix="vidpipe-litert")
            parts = list(self._executor.map(self._run_pooled, [x[i:i + 1] for i in range(n)]))
        return {name: np.concatenate([p[name] for p in parts], axis=0) if n > 1 else parts[0][name]
                for name, _ in self._out_index}
