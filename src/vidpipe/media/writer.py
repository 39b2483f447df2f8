"""Video output through PyAV: an encoder that makes Annex-B packets, and a muxer that writes them."""
from __future__ import annotations

import io
import logging
import os
from fractions import Fraction
from typing import Any

import numpy as np

from ..core.meta import EncodedPacket
from ..errors import MediaError, UnsupportedCodecError
from .convert import nv12_to_frame, rgb_to_frame

log = logging.getLogger("vidpipe")
TIME_BASE = Fraction(1, 90000)  # RTP's video clock; pts in this unit everywhere downstream

_ENCODERS = {"h264": ("libx264", "h264"), "h265": ("libx265", "hevc"), "hevc": ("libx265", "hevc")}
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".ts": "mpegts",
               ".h264": "raw", ".264": "raw", ".h265": "raw", ".265": "raw", ".hevc": "raw"}


class VideoEncoder:
    """Encodes RGB frames (numpy HxWx3 uint8) to H.264/H.265 Annex-B packets with in-band
    parameter sets on every keyframe (so late RTSP clients and file muxers both work)."""

    def __init__(self, codec: str = "h264", *, width: int, height: int, fps: float = 25.0,
                 bitrate: int = 0, crf: int = 23, preset: str = "veryfast", keyint: int = 0,
                 threads: int = 0, tune: str = ""):
        import av

        if codec.lower() not in _ENCODERS:
            raise UnsupportedCodecError(f"encoder codec '{codec}' is not supported; use h264 or h265")
        lib, self.codec = _ENCODERS[codec.lower()]
        if lib not in av.codecs_available:
            raise UnsupportedCodecError(f"this FFmpeg build has no {lib} encoder")
        self.width, self.height = width - width % 2, height - height % 2
        if self.width < 16 or self.height < 16:
            raise MediaError(f"frame size {width}x{height} is too small to encode")
        ctx = av.CodecContext.create(lib, "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
        ctx.time_base = TIME_BASE
        ctx.framerate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        ctx.thread_count = threads
        opts: dict[str, str] = {"preset": preset}
        if tune:
            opts["tune"] = tune
        if bitrate > 0:
            ctx.bit_rate = int(bitrate)
        else:
            opts["crf"] = str(crf)
        gop = keyint if keyint > 0 else max(1, round(fps * 2)) if fps > 0 else 50
        ctx.gop_size = gop
        if lib == "libx264":
            opts["x264-params"] = f"keyint={gop}:min-keyint={min(gop, 25)}:repeat-headers=1"
        else:
            opts["x265-params"] = f"keyint={gop}:min-keyint={min(gop, 25)}:repeat-headers=1:log-level=error"
        ctx.options = opts
        try:
            ctx.open()
        except av.FFmpegError as e:
            raise MediaError(f"cannot open {lib} encoder ({self.width}x{self.height}): {e}") from None
        self._ctx = ctx
        self._last_pts = -1
        self.frame_ticks = int(round(90000 / fps)) if fps > 0 else 3600

    def encode(self, image: np.ndarray | None, pts_seconds: float = 0.0, source_id: int = 0, *,
               nv12: np.ndarray | None = None) -> list[EncodedPacket]:
        """One RGB frame (HxWx3), or one NV12 frame (`nv12`, [H*3/2, W], as decoded on a GPU);
        neither: flush."""
        if image is None and nv12 is None:
            packets = self._ctx.encode(None)
        else:
            if nv12 is not None:
                frame = nv12_to_frame(nv12, self.width, self.height)
            else:
                if image.shape[1] != self.width or image.shape[0] != self.height:
                    image = image[: self.height, : self.width]
                frame = rgb_to_frame(np.ascontiguousarray(image))
            pts = int(round(pts_seconds * 90000))
            if pts <= self._last_pts:  # encoders need strictly increasing pts
                pts = self._last_pts + 1
            self._last_pts = pts
            frame.pts, frame.time_base = pts, TIME_BASE
            packets = self._ctx.encode(frame)
        return [EncodedPacket(source_id, bytes(p), int(p.pts), int(p.dts), TIME_BASE, bool(p.is_keyframe),
                              self.codec, self.width, self.height, self.frame_ticks) for p in packets]

    def flush(self, source_id: int = 0) -> list[EncodedPacket]:
        return self.encode(None, source_id=source_id)


def container_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in _CONTAINERS:
        raise MediaError(f"{path}: unknown output extension '{ext}'; use one of "
                         f"{', '.join(sorted(_CONTAINERS))}")
    return _CONTAINERS[ext]


class PacketMuxer:
    """Writes EncodedPackets to a file. The container is opened at the first keyframe (its
    parameter sets describe the stream); `close()` finalises it (MP4 moov written)."""

    def __init__(self, path: str):
        self.path = path
        self.format = container_format(path)
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise MediaError(f"{path}: folder {d} does not exist")
        self._container: Any = None
        self._raw: Any = None
        self._stream: Any = None
        self.packets = 0

    def write(self, pkt: EncodedPacket) -> None:
        import av

        if self.format == "raw":
            if self._raw is None:
                self._raw = open(self.path, "wb")
            self._raw.write(pkt.data)
            self.packets += 1
            return
        if self._container is None:
            if not pkt.keyframe:
                return  # wait for a keyframe: a file must start decodable
            tmpl = av.open(io.BytesIO(pkt.data), format="h264" if pkt.codec == "h264" else "hevc")
            self._container = av.open(self.path, "w", format=self.format)
            self._stream = self._container.add_stream_from_template(tmpl.streams.video[0])
            self._stream.time_base = pkt.time_base
            tmpl.close()
        p = av.Packet(pkt.data)
        p.pts, p.dts, p.time_base = pkt.pts, pkt.dts, pkt.time_base
        p.is_keyframe = pkt.keyframe
        if pkt.duration:
            p.duration = pkt.duration
        p.stream = self._stream
        self._container.mux(p)
        self.packets += 1

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None
