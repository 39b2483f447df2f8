"""Decoding into CUDA tensors.

NvDecReader: NVDEC through PyNvVideoCodec. Packets are demuxed by its bundled FFmpeg, frames are
decoded into device memory, handed to torch through DLPack and converted NV12 -> RGB on the
device: no host copy of a picture. The decoder reuses its surfaces, so each frame is converted
(into a new tensor) before the next packet is decoded.

UploadReader: any CPU reader (PyAV, image folders, network streams) with each frame copied to the
GPU once; the fallback when PyNvVideoCodec is missing or the input is not a file. When PyAV is
built with CUDA it is asked for hardware (cuvid/nvdec) decoding first.
"""
from __future__ import annotations

import logging
import os
from typing import Iterator

from ..errors import MediaError, UnsupportedCodecError
from ..media.reader import DecodedFrame, uri_to_path
from . import color  # noqa: F401  (registers NV12 -> RGB for frames that arrive as NV12)

log = logging.getLogger("vidpipe")


def have_nvdec() -> bool:
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        return False
    return True


def video_file(uri: str) -> str:
    """The local path of `uri`, checked to be an existing file (MediaError otherwise)."""
    path = uri_to_path(uri)
    if not os.path.exists(path):
        raise MediaError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise MediaError(f"{path}: is a folder, not a video file")
    return path


class NvDecReader:
    """Iterates RGB uint8 [H, W, 3] CUDA tensors of a video file (H.264, H.265, AV1, VP9 ...)."""

    def __init__(self, uri: str, device: str = "cuda:0"):
        import PyNvVideoCodec as nvc
        import torch

        path = video_file(uri)
        self.uri = uri
        self.device = torch.device(device)
        try:
            self._dmx = nvc.CreateDemuxer(filename=path)
        except Exception as e:  # PyNvVideoCodec raises its own exception types
            raise MediaError(f"{path}: cannot open as video ({e}); is it a complete, supported video file?") from None
        self.width, self.height = int(self._dmx.Width()), int(self._dmx.Height())
        if not self.width or not self.height:
            raise MediaError(f"{path}: video stream has no frame size; the file may be corrupt")
        fps = float(self._dmx.FrameRate() or 0)
        self.fps = fps if 0 < fps < 1000 else 25.0
        self.codec = str(self._dmx.GetNvCodecId()).split(".")[-1].lower()
        try:
            self._dec = nvc.CreateDecoder(gpuid=self.device.index or 0, codec=self._dmx.GetNvCodecId(),
                                          cudacontext=0, cudastream=0, usedevicememory=True)
        except Exception as e:
            raise UnsupportedCodecError(f"{path}: NVDEC cannot decode {self.codec} on this GPU ({e}); "
                                        "use device=cpu for this input") from None
        self.frame_count = 0
        self.duration_s = None
        self.errors = 0

    def frames_nv12(self) -> Iterator:
        """Decoded NV12 frames as torch tensors [H*3/2, W] (valid until the next one is decoded),
        ordered before work on the calling thread's current stream (read once, at the start)."""
        take = _dlpack_taker(self.device)
        while True:
            # Demux() ends with an empty packet (bsl == 0); decoding it flushes the frames the
            # decoder still holds (up to 16 for small pictures). Iterating the demuxer skips it.
            packet = self._dmx.Demux()
            try:
                frames = self._dec.Decode(packet)
            except Exception as e:  # a damaged packet: count it and go on
                self.errors += 1
                log.debug("%s: decode error: %s", self.uri, e)
                frames = []
            for f in frames:
                yield take(f)
            if packet.bsl == 0:
                break

    def __iter__(self) -> Iterator[DecodedFrame]:
        """Frames as NV12 copies (the decoder reuses its surfaces); RGB is made when asked for."""
        with _on_device(self.device):
            for i, nv12 in enumerate(self.frames_nv12()):
                yield DecodedFrame(None, i / self.fps, i, nv12=nv12[:self.height * 3 // 2, :self.width].clone())

    def close(self) -> None:
        self._dec = self._dmx = None


def _dlpack_taker(device):
    """frame -> tensor through DLPack, for one thread's current stream. torch.from_dlpack(frame)
    looks the current stream up for every frame and tries keyword sets until the producer takes
    one (PyNvVideoCodec's __dlpack__ takes `stream` only), which was most of a decoding thread's
    time holding the GIL (py-spy, 16 streams). The stream is the same for every frame of a
    thread: ask once and hand over the frame's capsule."""
    import torch
    stream = torch.cuda.current_stream(device)
    ptr = 1 if stream.cuda_stream == 0 else stream.cuda_stream  # DLPack's name for the legacy default stream

    def take(frame):
        try:
            capsule = frame.__dlpack__(stream=ptr)
        except (AttributeError, TypeError):
            return torch.from_dlpack(frame)
        return torch.from_dlpack(capsule)
    return take


class _on_device:
    def __init__(self, device):
        self.device = device

    def __enter__(self):
        import torch
        self._ctx = torch.cuda.device(self.device) if self.device.type == "cuda" else None
        if self._ctx is not None:
            self._ctx.__enter__()

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


class UploadReader:
    """Wraps a CPU reader: each decoded frame is copied to `device` once (pinned staging)."""

    def __init__(self, reader, device: str):
        import torch
        self.reader = reader
        self.device = torch.device(device)
        for k in ("width", "height", "fps", "codec", "frame_count"):
            setattr(self, k, getattr(reader, k, None))
        self.duration_s = getattr(reader, "duration_s", None)

    @property
    def errors(self) -> int:
        return self.reader.errors

    def __iter__(self) -> Iterator[DecodedFrame]:
        import torch

        from . import transfers
        for df in self.reader:
            t = torch.from_numpy(df.image)
            if self.device.type == "cuda":
                transfers.h2d(t.numel())
                t = t.to(self.device)
            yield DecodedFrame(t, df.pts_seconds, df.index)

    def close(self) -> None:
        self.reader.close()


def open_pyav_hw(uri: str, **kw):
    """A PyAV VideoReader asking FFmpeg for NVDEC (cuda hwaccel) when this PyAV supports it; FFmpeg
    falls back to software decoding when the GPU or the build cannot."""
    from ..media.reader import VideoReader
    try:
        from av.codec.hwaccel import HWAccel  # PyAV >= 14
    except ImportError:
        return VideoReader(uri, **kw)
    try:
        return VideoReader(uri, hwaccel=HWAccel(device_type="cuda", allow_software_fallback=True), **kw)
    except (TypeError, MediaError) as e:  # no CUDA device for FFmpeg: decode in software
        log.debug("%s: FFmpeg hardware decoding unavailable (%s)", uri, e)
        return VideoReader(uri, **kw)
