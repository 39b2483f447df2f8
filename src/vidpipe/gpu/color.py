"""NV12 <-> RGB on the device, BT.601 limited range (what OpenCV's COLOR_YUV2RGB_NV12 and the
CPU path use). The chroma of each 2x2 block is added to its four luma samples through a view,
so no upsampled chroma plane is ever made: 7 kernels per frame."""
from __future__ import annotations

# rows: contribution of (U-128, V-128) to R, G, B
_UV2RGB = ((0.0, -0.391, 2.018), (1.596, -0.813, 0.0))
_cache: dict = {}


def _uv_matrix(device, dtype):
    import torch
    key = ("uv", str(device), dtype)
    if key not in _cache:
        _cache[key] = torch.tensor(_UV2RGB, dtype=dtype, device=device)
    return _cache[key]


def nv12_to_rgb(nv12, height: int, width: int | None = None):
    """nv12: uint8 tensor [H*3/2, W] (luma rows, then interleaved UV rows). Returns [H, W, 3] uint8."""
    import torch
    w = width or nv12.shape[1]
    h2, w2 = height // 2, w // 2
    y = nv12[:height, :w].to(torch.float32)
    uv = nv12[height:height + h2, :w].reshape(h2, w2, 2).to(torch.float32) - 128.0
    chroma = uv @ _uv_matrix(nv12.device, torch.float32)              # [H/2, W/2, 3]
    luma = (y - 16.0).mul_(1.164).add_(0.5)                            # +0.5: round on the cast
    rgb = luma.view(h2, 2, w2, 2, 1) + chroma.view(h2, 1, w2, 1, 3)     # [H/2, 2, W/2, 2, 3]
    return rgb.clamp_(0, 255).to(torch.uint8).view(height, w, 3)


def rgb_to_nv12(rgb):
    """rgb: uint8 [H, W, 3] (H, W even). Returns NV12 uint8 [H*3/2, W] for NVENC."""
    import torch
    h, w = rgb.shape[:2]
    x = rgb.to(torch.float32)
    m = _cache.get(("rgb", str(rgb.device)))
    if m is None:
        m = _cache[("rgb", str(rgb.device))] = torch.tensor(
            ((0.257, -0.148, 0.439), (0.504, -0.291, -0.368), (0.098, 0.439, -0.071)),
            dtype=torch.float32, device=rgb.device)
    yuv = x @ m                                                          # [H, W, 3]
    out = torch.empty((h * 3 // 2, w), dtype=torch.uint8, device=rgb.device)
    out[:h] = (yuv[..., 0] + 16.5).clamp_(0, 255).to(torch.uint8)
    uv = yuv[..., 1:].view(h // 2, 2, w // 2, 2, 2).mean(dim=(1, 3)) + 128.5
    out[h:] = uv.clamp_(0, 255).to(torch.uint8).view(h // 2, w)
    return out
