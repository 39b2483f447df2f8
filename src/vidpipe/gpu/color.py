"""NV12 <-> RGB on the device, BT.601 limited range (what OpenCV's COLOR_YUV2RGB_NV12 and the
CPU path use). The chroma of each 2x2 block is added to its four luma samples through a view,
so no upsampled chroma plane is ever made: about ten kernels per frame, or per batch of
same-size frames (make_rgb)."""
from __future__ import annotations

import contextlib

from ..core.tensors import register_nv12_to_rgb

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
    """nv12: uint8 tensor [..., H*3/2, W] (luma rows, then interleaved UV rows; any leading batch
    axes). Returns [..., H, W, 3] uint8. Element-wise arithmetic only, so a frame converts to the
    same bits alone or in a batch."""
    import torch
    w = width or nv12.shape[-1]
    lead = tuple(nv12.shape[:-2])
    h2, w2 = height // 2, w // 2
    y = nv12[..., :height, :w].to(torch.float32)
    uv = nv12[..., height:height + h2, :w].reshape(*lead, h2, w2, 2).to(torch.float32) - 128.0
    u, v = uv[..., 0], uv[..., 1]
    (_, gu, bu), (rv, gv, _) = _UV2RGB
    chroma = torch.stack([rv * v, gu * u + gv * v, bu * u], -1)                # [..., H/2, W/2, 3]
    luma = (y - 16.0).mul_(1.164).add_(0.5)                                    # +0.5: round on the cast
    rgb = luma.view(*lead, h2, 2, w2, 2, 1) + chroma.view(*lead, h2, 1, w2, 1, 3)
    return rgb.clamp_(0, 255).to(torch.uint8).view(*lead, height, w, 3)


def make_rgb(frames) -> None:
    """Gives NV12-only frames their RGB image, converting frames of one size and device together
    (a handful of launches for the batch instead of per frame); each frame's image is its own
    contiguous slice of the batch's result."""
    import torch
    groups: dict = {}
    for f in frames:
        if not f.has_rgb and f.nv12 is not None:
            groups.setdefault((tuple(f.nv12.shape), str(f.nv12.device)), []).append(f)
    for (shape, _), fs in groups.items():
        if len(fs) == 1:
            fs[0].image  # noqa: B018  (made on first use)
            continue
        dev = fs[0].nv12.device
        with torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext():
            rgb = nv12_to_rgb(torch.stack([f.nv12 for f in fs]), shape[0] * 2 // 3)
        for f, img in zip(fs, rgb.unbind(0)):
            f.set_rgb_from_nv12(img)


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


def nv12_to_rgb_on_device(nv12):
    """nv12_to_rgb on the tensor's own GPU (called lazily from any thread)."""
    import torch
    if nv12.device.type != "cuda":
        return nv12_to_rgb(nv12, nv12.shape[0] * 2 // 3)
    with torch.cuda.device(nv12.device):
        return nv12_to_rgb(nv12, nv12.shape[0] * 2 // 3)


def nv12_batch_to_rgb_resized(nv12, height: int, width: int):
    """A batch of NV12 frames [N, H*3/2, W] -> float RGB [N, 3, height, width] (0..255, not
    rounded): the luma and chroma planes are resized first (bilinear, half-pixel centres), then
    converted, so a model input is made from the decoder's output in a few launches, whatever N."""
    import torch
    import torch.nn.functional as F
    n, rows, w = nv12.shape
    h = rows * 2 // 3
    y = F.interpolate(nv12[:, None, :h].float(), size=(height, width), mode="bilinear", align_corners=False)
    uv = nv12[:, h:].reshape(n, h // 2, w // 2, 2).permute(0, 3, 1, 2).float()
    uv = F.interpolate(uv, size=(height, width), mode="bilinear", align_corners=False) - 128.0
    luma = (y - 16.0) * 1.164
    u, v = uv[:, 0:1], uv[:, 1:2]
    (_, gu, bu), (rv, gv, _) = _UV2RGB
    rgb = torch.cat([luma + rv * v, luma + gu * u + gv * v, luma + bu * u], 1)
    return rgb.clamp_(0, 255)


register_nv12_to_rgb(nv12_to_rgb_on_device)
