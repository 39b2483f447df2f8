"""Still images: JPEG from a frame wherever it lives (OpenCV on the CPU, nvJPEG on the GPU)."""
from __future__ import annotations

import os
from typing import Any


def encode_jpeg(image: Any, quality: int = 90) -> bytes:
    """RGB HxWx3 uint8 (numpy, or a torch tensor: nvJPEG through torchvision on CUDA) -> JPEG bytes.
    Only the compressed bytes leave the GPU."""
    from ..core.tensors import is_tensor
    if is_tensor(image):
        from .nvjpeg import encode_jpeg_torch
        return encode_jpeg_torch(image, quality)
    import cv2
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot encode an image of shape {getattr(image, 'shape', '?')} as JPEG")
    return buf.tobytes()


def save_jpeg(path: str, image: Any, quality: int = 90) -> str:
    data = encode_jpeg(image, quality)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path
