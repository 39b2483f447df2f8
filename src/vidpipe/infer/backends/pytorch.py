"""ONNX models run by torch: converted with onnx2torch, in fp16 or fp32, any batch size, replayed
from CUDA graphs on the GPU.

Dynamic batch: exported detectors often say batch 1 and reshape with a literal 1 ([1, 80, -1]).
When the input's batch axis is 1, such leading 1s in constant Reshape shapes become 0 ("copy the
input's axis"); the result is then checked against one-at-a-time runs, and if it differs the
model is run item by item (with a log line) rather than giving wrong boxes.

Host syncs: onnx2torch keeps shape arguments (Reshape shapes, Pad amounts, Split sizes, Resize
scales) as tensors and reads them with Python; left on the GPU, each read is a device-to-host
sync, and a CUDA graph cannot be captured. Those constants stay on the host.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from ...errors import ModelError
from .base import Backend, TensorInfo

log = logging.getLogger("vidpipe")

_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 10: np.float16, 11: np.float64}
# onnx2torch modules whose arguments after the first are shapes, sizes or indices
_SHAPE_OPS = ("OnnxReshape", "OnnxPadDynamic", "OnnxPadStatic", "OnnxSplit", "OnnxSplit13", "OnnxResize",
              "OnnxExpand", "OnnxTile", "OnnxSlice", "OnnxConstantOfShape", "OnnxUnsqueezeDynamic",
              "OnnxSqueezeDynamic", "OnnxTopK", "OnnxRange")


def _tensor_infos(values) -> list[TensorInfo]:
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
        out.append(TensorInfo(v.name, shape, np.dtype(_ONNX_DTYPES.get(t.elem_type, np.float32))))
    return out


def _shape_constants(module):
    """(consumer module, buffer owner, buffer name) for every constant fed to a shape argument."""
    graph = getattr(module, "graph", None)
    if graph is None:
        return []
    found = []
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        sub = module.get_submodule(node.target)
        if type(sub).__name__ not in _SHAPE_OPS:
            continue
        for arg in node.args[1:]:
            if getattr(arg, "op", None) == "get_attr":
                owner_name, _, attr = arg.target.rpartition(".")
                owner = module.get_submodule(owner_name) if owner_name else module
                found.append((type(sub).__name__, owner, attr))
    return found


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, path: str, *, device: str = "cuda:0", precision: str = "fp16",
                 cuda_graphs: bool = True, max_batch: int = 64):
        try:
            import onnx
            import torch
            from onnx2torch import convert
        except ImportError as e:
            raise ModelError(f"backend=torch needs torch, onnx and onnx2torch ({e.name} is missing): "
                             "pip install 'vidpipe[gpu]'") from None
        self.torch = torch
        try:
            proto = onnx.load(path)
        except Exception as e:
            raise ModelError(f"{path}: not a readable ONNX model ({e})") from None
        init_names = {i.name for i in proto.graph.initializer}
        self.inputs = _tensor_infos([i for i in proto.graph.input if i.name not in init_names])
        self.outputs = _tensor_infos(proto.graph.output)
        if len(self.inputs) != 1:
            raise ModelError(f"{path}: vidpipe feeds models with exactly one image input; this one has "
                             f"{len(self.inputs)}: {self.describe()}")
        try:
            module = convert(proto)
        except Exception as e:  # onnx2torch: an operator it does not know, or an unsupported attribute
            raise ModelError(f"{path}: onnx2torch cannot convert this model ({type(e).__name__}: {e}); use "
                             "backend=onnxruntime") from None
        self.device = torch.device(device)
        self.precision = "fp16" if precision == "fp16" and self.device.type == "cuda" else "fp32"
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        if self.device.type == "cuda" and self.precision == "fp32":
            # fp32 means IEEE fp32, as on the CPU: TF32 convolutions move scores by ~1e-3 and boxes
            # near a threshold appear or vanish (process-wide setting)
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        consts = _shape_constants(module)
        batch = self.inputs[0].shape[0]
        self.batch_patched = False
        if batch == 1:
            for op, owner, attr in consts:
                buf = getattr(owner, attr)
                if op == "OnnxReshape" and buf.ndim == 1 and len(buf) >= 2 and int(buf[0]) == 1:
                    buf[0] = 0
                    self.batch_patched = True
        module = module.eval().to(self.device)
        for _, owner, attr in consts:  # shape arguments are read on the host: keep them there
            if attr in owner._buffers:
                owner._buffers[attr] = owner._buffers[attr].cpu()
            else:
                setattr(owner, attr, getattr(owner, attr).cpu())
        self.module = module
        self.per_item = False
        self._lock = threading.Lock()
        self.max_batch = None
        in_dtype = self.inputs[0].dtype
        self.input_dtype = self.dtype if np.issubdtype(in_dtype, np.floating) else \
            getattr(torch, np.dtype(in_dtype).name)
        if batch not in (1, None) and isinstance(batch, int) and batch > 1:
            self.max_batch = batch  # a model made for exactly N frames: padded chunks of N
        else:
            self._check_batching(path)
        if self.dtype == torch.float16:
            self.module = self.module.half()
        # image models on CUDA run channels-last (NHWC): cuDNN's tensor-core convolutions take
        # it directly, where NCHW costs layout conversions around every convolution. NanoDet-m at
        # 416x416 fp16 on an H100: 4,540 -> 10,150 images/s at batch 16, 4,340 -> 12,540 at 64
        # (benchmarks/RESULTS.md, run V); outputs move by what another kernel choice moves them
        self.memory_format = torch.channels_last if self.device.type == "cuda" and len(self.inputs[0].shape) == 4 \
            else torch.contiguous_format
        if self.memory_format is torch.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.graph_limit = max_batch
        self._graphs: dict[int, tuple] = {}
        self._pool = None
        self._frozen = False  # after prepare(): no new captures

    # -- batching ---------------------------------------------------------------------------
    def _input_shape(self, n: int) -> tuple:
        dims = [d if isinstance(d, int) and d > 0 else None for d in self.inputs[0].shape[1:]]
        if None in dims:
            raise ModelError(f"model input {self.inputs[0]} has a dynamic size; set infer-dims=3;H;W")
        return (n, *dims)

    def _check_batching(self, path: str) -> None:
        torch = self.torch
        try:
            shape = self._input_shape(2)
        except ModelError:
            return  # dynamic spatial size: the preprocessor decides, batching is the model's business
        g = torch.Generator().manual_seed(0)
        x = torch.rand(shape, generator=g).to(self.device)
        if not x.dtype.is_floating_point or self.input_dtype in (torch.uint8, torch.int8):
            x = (x * 255).to(self.input_dtype)
        try:
            with torch.inference_mode():
                both = self._outputs(self.module(x))
                ones = [self._outputs(self.module(x[i:i + 1])) for i in range(2)]
            # the failure this catches is gross (the batch folded into another axis, or items
            # mixed); TF32 convolutions differ by ~1e-3 between batch sizes, which is fine
            ok = all(b.shape[0] == 2 and b.shape[1:] == o[k].shape[1:] and
                     float((b[i:i + 1].float() - o[k].float()).norm()) <= 1e-2 * (float(o[k].float().norm()) + 1e-6)
                     for k, b in enumerate(both) for i, o in enumerate(ones))
            why = "outputs of a batch differ from one-at-a-time outputs"
        except Exception as e:
            ok, why = False, f"{type(e).__name__}: {e}"
        if not ok:
            self.per_item = True
            log.warning("%s: the model does not take batches > 1 after conversion (%s); running it one "
                        "frame at a time (export it with a dynamic batch axis for speed)", path, why[:200])

    @staticmethod
    def _outputs(out) -> list:
        return list(out) if isinstance(out, (list, tuple)) else [out]

    # -- running ----------------------------------------------------------------------------
    def _graph(self, n: int):
        torch = self.torch
        g = self._graphs.get(n)
        if g is not None:
            return g
        static_in = torch.empty(self._input_shape(n), dtype=self.input_dtype, device=self.device,
                                memory_format=self.memory_format).zero_()
        from ...gpu import streams
        s = streams.side(self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(s), torch.inference_mode():
            for _ in range(2):
                self.module(static_in)
        torch.cuda.current_stream(self.device).wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        with torch.inference_mode(), torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
            static_out = self._outputs(self.module(static_in))
        g = self._graphs[n] = (graph, static_in, static_out)
        return g

    def _bucket(self, n: int) -> int:
        b = 1
        while b < n:
            b *= 2
        return min(b, self.graph_limit) if n <= self.graph_limit else n

    def prepare(self, n: int) -> None:
        """Captures the CUDA graphs for every batch bucket up to n (1, 2, 4, ... n) now, before the
        pipeline's threads run, and no more afterwards: a capture while other threads launch work
        on the GPU would fail (and poison their work). Larger batches then run eagerly."""
        if self.cuda_graphs and not self.per_item and self.max_batch is None:
            top = self._bucket(min(max(n, 1), self.graph_limit))
            sizes, b = [], 1
            while b < top:
                sizes.append(b)
                b *= 2
            sizes.append(top)
            with self._lock:
                for b in sizes:
                    try:
                        self._graph(b)
                    except Exception as e:
                        log.warning("CUDA graph capture failed (%s: %s); running the model eagerly",
                                    type(e).__name__, str(e)[:200])
                        self.cuda_graphs = False
                        self._graphs.clear()
                        break
        self._frozen = True

    def release(self) -> None:
        """Frees the captured graphs and their memory (a stopped pipeline's element calls it: the
        pipeline's objects live on until Python's cyclic GC, which does not see GPU memory). The
        model still runs afterwards, eagerly; prepare() captures again."""
        with self._lock:
            self._graphs.clear()
            self._pool = None
            self._frozen = False

    def run_torch(self, x) -> dict:
        """x: [N, ...] tensor on the backend's device (any float dtype). Returns output tensors by
        name, batch first. With CUDA graphs the tensors are the graph's own buffers: use them
        before the next call (the infer element does)."""
        torch = self.torch
        names = [o.name for o in self.outputs]
        x = self._input(x)
        n = len(x)
        if self.per_item and n > 1:
            parts = [self.run_torch(x[i:i + 1]) for i in range(n)]
            return {k: torch.cat([p[k] for p in parts]) for k in names}
        if self.max_batch is not None and n != self.max_batch:
            chunks = []
            for i in range(0, n, self.max_batch):
                c = x[i:i + self.max_batch]
                k = len(c)
                if k < self.max_batch:
                    c = torch.cat([c, c.new_zeros((self.max_batch - k, *c.shape[1:]))])
                chunks.append({kk: v[:k].clone() for kk, v in self.run_torch(c).items()})
            return {k: torch.cat([c[k] for c in chunks]) for k in names}
        with self._lock:
            b = self._bucket(n) if n <= self.graph_limit else 0
            if self.cuda_graphs and b and (b in self._graphs or not self._frozen):
                try:
                    graph, static_in, static_out = self._graph(b)
                except Exception as e:
                    log.warning("CUDA graph capture failed (%s: %s); running the model eagerly",
                                type(e).__name__, str(e)[:200])
                    self.cuda_graphs = False
                else:
                    static_in[:n].copy_(x)
                    if b > n:
                        static_in[n:].zero_()
                    graph.replay()
                    return {k: v[:n] for k, v in zip(names, static_out)}
            with torch.inference_mode():
                return dict(zip(names, self._outputs(self.module(x))))

    def forward(self, x) -> dict:
        """The module on x, eagerly (for callers that capture it in a larger graph themselves)."""
        with self.torch.inference_mode():
            return dict(zip([o.name for o in self.outputs], self._outputs(self.module(self._input(x)))))

    def _input(self, x):
        """x in the module's dtype and memory format (a no-op where it already is)."""
        x = x.to(self.input_dtype)
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        from ...core.tensors import to_host
        t = self.torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        return {k: to_host(v.float() if v.is_floating_point() else v) for k, v in self.run_torch(t).items()}

    def describe(self) -> str:
        extra = [self.precision, f"on {self.device}"]
        if self.memory_format is self.torch.channels_last:
            extra.append("channels-last")
        if self.cuda_graphs:
            extra.append("CUDA graphs")
        if self.batch_patched:
            extra.append("batch axis made dynamic")
        if self.per_item:
            extra.append("one frame per call")
        return super().describe() + " | " + ", ".join(extra)
