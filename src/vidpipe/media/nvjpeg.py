"""nvJPEG through torchvision.io.encode_jpeg (CUDA tensors are encoded on the GPU)."""
from __future__ import annotations

from ..core.tensors import transfers


def encode_jpeg_torch(image, quality: int = 90) -> bytes:
    from torchvision.io import encode_jpeg
    chw = image.permute(2, 0, 1).contiguous()
    data = encode_jpeg(chw, quality=int(quality))
    if data.device.type != "cpu":
        transfers.d2h(data.numel())
    return bytes(data.cpu().numpy().tobytes())
