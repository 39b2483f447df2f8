"""Tensors that may live on a GPU, seen from the layers that never import torch: recognising a
tensor, and counting the bytes vidpipe copies between device and host. The GPU package
(vidpipe.gpu) re-exports these."""
from __future__ import annotations

import threading
from typing import Any


def is_tensor(x: Any) -> bool:
    """True for a torch tensor, without importing torch."""
    return type(x).__module__.startswith("torch")


class TransferCounter:
    """Bytes vidpipe itself copies between device and host (frames, tensors, detections).
    `vidpipe bench --device cuda` reports them per frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.d2h_bytes = self.d2h_copies = self.h2d_bytes = self.h2d_copies = 0
        self.frame_d2h = 0  # whole frames copied to the host (Frame.to_numpy on a GPU frame)

    def d2h(self, nbytes: int, frame: bool = False) -> None:
        with self._lock:
            self.d2h_bytes += int(nbytes)
            self.d2h_copies += 1
            self.frame_d2h += int(frame)

    def h2d(self, nbytes: int) -> None:
        with self._lock:
            self.h2d_bytes += int(nbytes)
            self.h2d_copies += 1

    def snapshot(self) -> dict[str, int]:
        return {"d2h_bytes": self.d2h_bytes, "d2h_copies": self.d2h_copies, "h2d_bytes": self.h2d_bytes,
                "h2d_copies": self.h2d_copies, "frame_d2h": self.frame_d2h}


transfers = TransferCounter()


def to_host(t) -> Any:
    """A tensor as a numpy array, counted when it leaves a GPU."""
    if t.device.type != "cpu":
        transfers.d2h(t.numel() * t.element_size())
    return t.detach().cpu().numpy()


_nv12_to_rgb: Any = None  # set by vidpipe.gpu.color when it loads (it makes every NV12 frame there is)


def register_nv12_to_rgb(fn: Any) -> None:
    global _nv12_to_rgb
    _nv12_to_rgb = fn


def nv12_to_rgb(nv12: Any) -> Any:
    """An NV12 frame [H*3/2, W] -> RGB [H, W, 3], by the converter the GPU package registered."""
    if _nv12_to_rgb is None:
        raise RuntimeError("an NV12 frame needs vidpipe.gpu.color (import it once; NVDEC sources do)")
    return _nv12_to_rgb(nv12)
