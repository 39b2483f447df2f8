"""The GPU path: frames as torch CUDA tensors from decode to sink.

Nothing here is imported by the CPU path: every module imports torch lazily, and a machine
without torch never loads this package unless a user asks for device=cuda (or backend=torch).

    decode.py     NVDEC through PyNvVideoCodec (PyAV + upload as fallback), NV12 -> RGB
    color.py      NV12 <-> RGB (BT.601 limited range, as the CPU path and OpenCV)
    backend.py    ONNX -> torch (onnx2torch), fp16, dynamic batch, CUDA graphs
    preprocess.py batched resize / letterbox / normalise on the device
    parse.py      detector parsers in torch + batched NMS
    draw.py       osd and tiler drawing on the device
    encode.py     NVENC through PyNvVideoCodec (CPU x264 fallback in the encoder element)
    jpeg.py       nvJPEG (torchvision.io.encode_jpeg on CUDA tensors)
"""
from __future__ import annotations

import threading
from typing import Any

from ..errors import PropertyError


def is_tensor(x: Any) -> bool:
    """True for a torch tensor, without importing torch."""
    return type(x).__module__.startswith("torch")


def torch_module(who: str = "device=cuda"):
    try:
        import torch
    except ImportError:
        raise PropertyError(f"{who} needs PyTorch: pip install 'vidpipe[gpu]' (torch, torchvision, "
                            "pynvvideocodec, onnx2torch)") from None
    return torch


def normalize_device(device: str) -> str:
    """'cuda' -> 'cuda:0'; 'cpu' and 'cuda:N' stay."""
    d = (device or "cpu").strip().lower()
    if d == "cuda":
        return "cuda:0"
    if d == "cpu" or (d.startswith("cuda:") and d[5:].isdigit()):
        return d
    raise PropertyError(f"device '{device}' is not understood; use cpu, cuda or cuda:N")


def require_cuda(device: str, who: str):
    """torch, after checking that `device` (cuda:N) exists."""
    torch = torch_module(f"{who}: device={device}")
    dev = normalize_device(device)
    if not torch.cuda.is_available():
        raise PropertyError(f"{who}: device={device} but torch sees no CUDA GPU (torch {torch.__version__}, "
                            f"CUDA build {torch.version.cuda}); use device=cpu or check the NVIDIA driver")
    index = int(dev.split(":")[1])
    if index >= torch.cuda.device_count():
        raise PropertyError(f"{who}: device={device} but only {torch.cuda.device_count()} GPU(s) are visible")
    return torch


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
