"""A torch detector's front end as one CUDA graph per frame size.

For a full batch of same-size NV12 frames (what NVDEC sources deliver) the work before the first
data-dependent step - stacking the frames' planes, resizing and converting them to the model
input, the model, decoding its outputs into candidate boxes, scores and classes - has fixed
shapes, so it is captured once and replayed: one stack copy and one replay per batch instead of
about eighty kernel launches from Python. Those launches, not the GPU, bounded small batches (the
per-stage table in benchmarks/RESULTS.md).

With a `select` function the graph goes on to thresholds and NMS in fixed shapes
(parsers.pytorch.select_fixed: the k best candidates per frame, NMS as a fixed point), so the
batch's kept boxes come out of the replay in one table and nothing waits for the device until
that table is on the host. NMS with data-dependent sizes (torchvision's) waited for the device
several times per batch, in the thread that completes batches while the next one launches.

Results equal the eager path's: the same kernels on the same shapes, replayed; the fixed-shape
selection keeps exactly what `select` keeps, and says when it could not (then `select` runs).

The infer element captures it for at most `graph-chunk` (16) frames and replays a larger batch in
chunks of that many: 64 streams ran 15-20% faster that way than with one graph of 64, at the same
GPU time per frame. A frame's outputs then depend on its place in its chunk, not on its batch's
size.

Batches overlap (one launches while the one before completes), so the graph is captured once per
chunk of a batch in flight ("slots", replayed in turn) with outputs of its own, and the kept
boxes' copy to pinned host memory is part of each graph: no clone of the outputs and no copy
launched from Python per batch. Every launch from Python gives the GIL up and waits to take it
back behind the pipeline's other threads, and those waits, not the GPU, held the launching thread
busy (py-spy, benchmarks/RESULTS.md).
"""
from __future__ import annotations

import logging
from typing import Any

from .parsers.pytorch import candidates

log = logging.getLogger("vidpipe")


class GraphedFrontEnd:
    """Call with a list of NV12 tensors; returns ((xyxy, scores, classes), selected, transforms)
    from one slot's own buffers, for `batch` frames however many were given, or None where the
    eager path must run: more frames than `batch`, mixed frame sizes, or a size no graph was
    captured for. `selected` (None without a select function) is (pinned host buffer, table
    shape): select's table, flattened, then its two status values, there once the work queued on
    the current stream so far has finished. A slot's outputs stay valid for `slots - 1` further
    calls: the caller completes a batch before it launches the `slots`-th after it.

    capture(shape) must run while no other thread uses the device (a capture sees other threads'
    work and fails, and a failed capture leaves torch's random generator unusable): the infer
    element calls it from negotiate(), before the pipeline's threads start, for the size its NVDEC
    sources announce."""

    def __init__(self, pre: Any, backend: Any, parser: Any, ctx: Any, batch: int, select: Any = None,
                 slots: int = 1):
        import torch
        self.torch = torch
        self.pre, self.backend, self.parser, self.ctx = pre, backend, parser, ctx
        self.batch = batch
        self.select = select
        self.slots = max(1, slots)
        self.graphs: dict[tuple, tuple] = {}  # NV12 shape -> (input buffer, [(graph, outputs)] per slot)
        self.calls = 0

    @staticmethod
    def fits(backend: Any) -> bool:
        """Whether the backend can run inside a captured graph at any batch size."""
        return bool(getattr(backend, "cuda_graphs", False)) and not backend.per_item and backend.max_batch is None

    def takes(self, nv12s: list) -> bool:
        """Whether a graph was captured for these frames (all of one size): the caller may then
        replay any number of them, `batch` at a time."""
        shape = tuple(nv12s[0].shape)
        return shape in self.graphs and all(tuple(t.shape) == shape for t in nv12s)

    def __call__(self, nv12s: list) -> tuple | None:
        k = len(nv12s)
        if not 0 < k <= self.batch or not self.takes(nv12s):
            return None
        static_in, slots = self.graphs[tuple(nv12s[0].shape)]
        graph, out = slots[self.calls % len(slots)]
        self.calls += 1
        # a partial batch runs through the same graph, the frames it lacks zeroed: each frame's
        # objects are then exactly those it gets in a full batch (the eager launches use other
        # kernels at other batch sizes, equal only to about 1e-3 in scores, so a detection near
        # the threshold could depend on how many frames shared its batch). The caller drops the
        # rows of frames beyond k.
        if k < self.batch:
            self.torch.stack(nv12s, out=static_in[:k])
            static_in[k:].zero_()
        else:
            self.torch.stack(nv12s, out=static_in)
        graph.replay()
        return out

    def _body(self, static_in, host=None) -> tuple:
        """The captured work. `host`: the slot's pinned buffer for select's table and status;
        None in the warm-up, which returns that buffer's length in its place."""
        x, transforms = self.pre.from_nv12_stacked(static_in)
        cand = candidates(self.parser, self.backend.forward(x), self.ctx)
        if cand is None:
            raise TypeError(f"parser {self.parser.name} has no torch decoder")
        if self.select is None:
            return cand, None, transforms
        table, status = self.select(*cand)
        flat = self.torch.cat([table.reshape(-1), status.to(table.dtype)])
        if host is None:
            return cand, flat.numel(), transforms
        host.copy_(flat, non_blocking=True)
        return cand, (host, tuple(table.shape)), transforms

    def capture(self, shape: tuple) -> bool:
        """Captures the graph for NV12 frames of `shape` ([H*3/2, W]); False (logged) if it fails."""
        torch = self.torch
        if shape in self.graphs:
            return True
        dev = self.backend.device
        static_in = torch.zeros((self.batch, *shape), dtype=torch.uint8, device=dev)
        try:
            from ..gpu import streams
            side = streams.side(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(2):  # warm-up: lazy buffers and kernel choices are made outside the capture
                    size = self._body(static_in)[1]
            torch.cuda.current_stream(dev).wait_stream(side)
            slots, pool = [], None
            for _ in range(self.slots):  # one memory pool: the slots replay one at a time, in turn
                host = torch.empty(size, dtype=torch.float32, pin_memory=True) if size is not None else None
                graph = torch.cuda.CUDAGraph()
                with torch.inference_mode(), torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                    out = self._body(static_in, host)
                pool = graph.pool()
                slots.append((graph, out))
        except Exception as e:  # the eager path stays correct
            log.warning("CUDA graph of the detector's front end for %s NV12 frames failed (%s: %s); launching "
                        "it eagerly", shape, type(e).__name__, str(e)[:200])
            return False
        self.graphs[shape] = (static_in, slots)
        return True
