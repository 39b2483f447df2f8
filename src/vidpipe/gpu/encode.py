"""NVENC through PyNvVideoCodec: RGB CUDA frames -> NV12 on the device -> H.264/H.265 Annex-B.

The encoder element asks `open_nvenc` first for frames on a GPU; when it returns None (no
PyNvVideoCodec, or a GPU without NVENC such as the H100/A100) the element logs one line and
encodes with x264/x265 on the CPU, copying each frame to the host.
"""
from __future__ import annotations

import logging
from fractions import Fraction

from ..core.meta import EncodedPacket
from .color import rgb_to_nv12

log = logging.getLogger("vidpipe")
TIME_BASE = Fraction(1, 90000)


def _keyframe(data: bytes, codec: str) -> bool:
    """Whether an Annex-B access unit holds an IDR/IRAP picture."""
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= len(data):
            return False
        b = data[i + 3]
        if codec == "h264" and b & 0x1F == 5:
            return True
        if codec == "hevc" and 16 <= (b >> 1) & 0x3F <= 21:
            return True
        i += 3


class NvEncoder:
    def __init__(self, codec: str, width: int, height: int, fps: float, bitrate: int, gop: int, gpu: int):
        import PyNvVideoCodec as nvc
        self.codec = "hevc" if codec in ("h265", "hevc") else "h264"
        self.width, self.height = width - width % 2, height - height % 2
        opts = {"codec": self.codec, "fps": str(int(round(fps or 25))), "gop": str(gop), "bf": "0",
                "repeatspspps": "1", "gpu_id": str(gpu)}
        if bitrate:
            opts.update(rc="cbr", bitrate=str(bitrate))
        self._enc = nvc.CreateEncoder(self.width, self.height, "NV12", False, **opts)
        self.frame_ticks = int(round(90000 / fps)) if fps > 0 else 3600
        self._n = 0

    def _packets(self, result, source_id: int) -> list[EncodedPacket]:
        """Encode/EndEncode give bytes, or a list of {'data': ..., ...} (one per access unit)."""
        chunks = [result] if isinstance(result, (bytes, bytearray, memoryview)) else list(result or [])
        out = []
        for c in chunks:
            data = bytes(c["data"] if isinstance(c, dict) else c)
            if not data:
                continue
            pts = self._n * self.frame_ticks
            self._n += 1
            out.append(EncodedPacket(source_id, data, pts, pts, TIME_BASE, _keyframe(data, self.codec), self.codec,
                                     self.width, self.height, self.frame_ticks))
        return out

    def encode(self, image, pts_seconds: float = 0.0, source_id: int = 0, *, nv12=None) -> list[EncodedPacket]:
        """One RGB frame (tensor HxWx3), or one NV12 frame (`nv12`, [H*3/2, W]) as it is."""
        if nv12 is not None:
            h = nv12.shape[0] * 2 // 3
            if (nv12.shape[1], h) != (self.width, self.height):  # odd sizes: the even part
                nv12 = crop_nv12(nv12, h, self.width, self.height)
        else:
            nv12 = rgb_to_nv12(image[: self.height, : self.width].contiguous())
        return self._packets(self._enc.Encode(nv12.contiguous()), source_id)

    def flush(self, source_id: int = 0) -> list[EncodedPacket]:
        return self._packets(self._enc.EndEncode(), source_id)


def crop_nv12(nv12, h: int, width: int, height: int):
    """An NV12 tensor cropped to width x height (both even)."""
    import torch
    return torch.cat([nv12[:height, :width], nv12[h:h + height // 2, :width]])


def open_nvenc(codec: str, width: int, height: int, fps: float, bitrate: int, gop: int, device) -> NvEncoder | None:
    """An NVENC encoder, or None (reason logged by the caller) when this GPU or install has none."""
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return None
    try:
        return NvEncoder(codec, width, height, fps, bitrate, gop, getattr(device, "index", 0) or 0)
    except Exception as e:  # no NVENC engine, or a session limit
        log.debug("NVENC unavailable: %s", e)
        return None
