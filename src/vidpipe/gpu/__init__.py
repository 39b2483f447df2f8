"""The GPU path: frames as torch CUDA tensors from decode to sink.

Nothing here is imported by the CPU path: every module imports torch lazily, and a machine
without torch never loads this package unless a user asks for device=cuda (or backend=torch).

    decode.py     NVDEC through PyNvVideoCodec (PyAV + upload as fallback), NV12 -> RGB
    color.py      NV12 <-> RGB (BT.601 limited range, as the CPU path and OpenCV)
    draw.py       osd and tiler drawing on the device
    encode.py     NVENC through PyNvVideoCodec (CPU x264 fallback in the encoder element)
    streams.py    CUDA streams that outlive pipelines (their cuBLAS workspace is kept by torch)

The torch model backend, preprocessing and parsers live with inference (infer/backends/pytorch.py,
infer/preprocess_torch.py, infer/parsers/pytorch.py), which uses this package, never the reverse.
"""
from __future__ import annotations

from ..core.tensors import TransferCounter, is_tensor, to_host, transfers
from ..errors import PropertyError

__all__ = ["TransferCounter", "is_tensor", "to_host", "transfers", "torch_module", "normalize_device",
           "require_cuda"]


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


