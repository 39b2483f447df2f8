"""CUDA streams that outlive pipelines.

Every stream a model runs on gets cuBLAS workspace of its own (32 MB on an H100), kept by torch for
as long as the process lives, keyed by the stream; torch hands out streams from a pool of 32 per
device and priority, round robin. An element that made new streams per pipeline therefore left
32 MB behind per stream, until the pool came round (measured: 32 MB per 4-stream pipeline,
growing run after run). Elements take streams from here instead and give them back when they
stop: the next pipeline's elements reuse the same streams and workspace.
"""
from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_free: dict[str, list] = {}   # device -> streams given back
_side: dict[str, Any] = {}    # device -> the stream for warm-ups before graph captures


def take(device: Any, n: int) -> tuple:
    """n streams on `device` (torch.device or 'cuda:N'), reused where given back before."""
    import torch
    key = str(device)
    with _lock:
        free = _free.setdefault(key, [])
        got = [free.pop() for _ in range(min(n, len(free)))]
    return tuple(got + [torch.cuda.Stream(device) for _ in range(n - len(got))])


def give_back(device: Any, streams: tuple) -> None:
    """Streams from take() that their element no longer uses (its work on them has been waited for)."""
    with _lock:
        _free.setdefault(str(device), []).extend(streams)


def side(device: Any):
    """One stream per device for work done before the pipeline's threads run (model warm-ups ahead
    of a CUDA graph capture, which must not run on the default stream)."""
    import torch
    key = str(device)
    with _lock:
        s = _side.get(key)
        if s is None:
            s = _side[key] = torch.cuda.Stream(device)
        return s
