"""Video input through PyAV (FFmpeg): files, raw H.264/H.265 elementary streams, URLs."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

import numpy as np

from ..errors import MediaError, UnsupportedCodecError
from .convert import frame_to_rgb

log = logging.getLogger("vidpipe")

_RAW_FORMATS = {".h264": "h264", ".264": "h264", ".avc": "h264", ".h265": "hevc", ".265": "hevc",
                ".hevc": "hevc"}
_NETWORK_SCHEMES = {"rtsp", "rtsps", "rtmp", "http", "https", "udp", "rtp", "tcp", "srt"}


def uri_to_path(uri: str) -> str:
    """'file:///a/b.mp4' -> '/a/b.mp4'; plain paths stay as they are."""
    if uri.startswith("file://"):
        return urlparse(uri).path
    return uri


def is_network(uri: str) -> bool:
    return urlparse(uri).scheme.lower() in _NETWORK_SCHEMES


@dataclass
class DecodedFrame:
    image: np.ndarray  # RGB uint8 HxWx3
    pts_seconds: float
    index: int


class VideoReader:
    """Opens a video and decodes it to RGB frames.

    Errors are raised at construction (missing file, no video stream, unknown codec) so that a
    pipeline fails at start, not halfway through.
    """

    def __init__(self, uri: str, *, threads: int = 0, options: dict[str, str] | None = None,
                 timeout_s: float | None = 10.0):
        import av

        self.uri = uri
        path = uri_to_path(uri)
        fmt = _RAW_FORMATS.get(os.path.splitext(path)[1].lower())
        if path.startswith("v4l2://"):
            path = path[len("v4l2://"):]
        if path.startswith("/dev/video"):
            fmt = "v4l2"
            if not os.path.exists(path):
                raise MediaError(f"{path}: no such camera device; check that the camera is connected "
                                 "(ls /dev/video*) and that you may read it (group 'video')")
        if not is_network(path):
            if not os.path.exists(path):
                raise MediaError(f"{path}: no such file; check the path (or pass a URI such as rtsp://...)")
            if os.path.isdir(path):
                raise MediaError(f"{path}: is a folder, not a video file")
        try:
            self._container = av.open(path, format=fmt, options=options or {}, timeout=timeout_s)
        except av.FFmpegError as e:
            raise MediaError(f"{path}: cannot open as video ({e.strerror or e}); is it a complete, "
                             "supported video file?") from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{path}: contains no video stream")
        self._stream = self._container.streams.video[0]
        ctx = self._stream.codec_context
        if ctx is None or not ctx.name or ctx.codec is None:
            self._container.close()
            tag = getattr(self._stream, "codec_tag", "") or "unknown"
            raise UnsupportedCodecError(f"{path}: video codec '{tag}' is not supported by this FFmpeg build; "
                                        "re-encode the file to H.264 or H.265 (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)")
        try:
            self._stream.thread_type = "AUTO"
            self._stream.thread_count = threads
        except Exception:  # some codecs refuse frame threads; slice threads still apply
            pass
        self.codec = ctx.name
        self.width = ctx.width
        self.height = ctx.height
        if not self.width or not self.height:
            self._container.close()
            raise MediaError(f"{path}: video stream has no frame size; the file may be corrupt")
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.frame_count = int(self._stream.frames or 0)
        self.errors = 0

    def __iter__(self) -> Iterator[DecodedFrame]:
        import av

        tb = self._stream.time_base
        start = self._stream.start_time
        index = 0
        demux = self._container.demux(self._stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.FFmpegError as e:
                self.errors += 1
                log.warning("%s: stopped reading after a demux error: %s", self.uri, e)
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as e:  # corrupt packet: skip it, keep going
                self.errors += 1
                log.debug("%s: decode error: %s", self.uri, e)
                continue
            for frame in frames:
                if frame.pts is not None and tb is not None:
                    pts = float((frame.pts - (start or 0)) * tb)
                else:
                    pts = index / self.fps
                yield DecodedFrame(frame_to_rgb(frame), pts, index)
                index += 1

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe(uri: str) -> dict:
    """Codec, size, fps and frame count of a video (opens and closes it)."""
    with VideoReader(uri) as r:
        return {"codec": r.codec, "width": r.width, "height": r.height, "fps": r.fps,
                "frames": r.frame_count}
