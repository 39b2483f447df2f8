"""Video input through PyAV (FFmpeg): files, raw H.264/H.265 elementary streams, URLs."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator
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
    image: Any  # RGB uint8 HxWx3 (None when only nv12 is given)
    pts_seconds: float
    index: int
    nv12: Any = None  # NV12 [H*3/2, W] on the GPU (NVDEC): RGB is made from it when needed


_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageSequenceReader:
    """A folder of images (sorted by name) or a printf pattern such as frames/img%05d.jpg, read
    as a video at `fps` frames per second."""

    codec = "images"

    def __init__(self, uri: str, fps: float = 25.0):
        import glob
        import re

        path = uri_to_path(uri)
        self.uri = uri
        if os.path.isdir(path):
            files = sorted(f for f in glob.glob(os.path.join(path, "*")) if f.lower().endswith(_IMAGE_EXT))
        else:
            rx = re.compile("^" + re.sub(r"%0?(\d*)d", lambda m: r"(\d{%s})" % m.group(1) if m.group(1) else r"(\d+)",
                                         re.escape(os.path.basename(path)).replace("\\%", "%")) + "$")
            folder = os.path.dirname(path) or "."
            found = [(int(m.group(1)), os.path.join(folder, f)) for f in os.listdir(folder) if (m := rx.match(f))] \
                if os.path.isdir(folder) else []
            files = [f for _, f in sorted(found)]
        if not files:
            raise MediaError(f"{path}: no images found (a folder of .jpg/.png files, or a pattern like img%05d.jpg)")
        self.files = files
        first = self._load(files[0])
        self.height, self.width = first.shape[:2]
        self.fps = fps
        self.frame_count = len(files)
        self.errors = 0

    @staticmethod
    def _load(path: str) -> np.ndarray:
        import cv2
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise MediaError(f"{path}: cannot read this image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[DecodedFrame]:
        for i, f in enumerate(self.files):
            try:
                img = self._load(f)
            except MediaError as e:
                self.errors += 1
                log.warning("%s", e)
                continue
            if img.shape[:2] != (self.height, self.width):
                import cv2
                img = cv2.resize(img, (self.width, self.height))
            yield DecodedFrame(img, i / self.fps, i)

    def close(self) -> None:
        pass


def is_image_sequence(uri: str) -> bool:
    path = uri_to_path(uri)
    return (os.path.isdir(path) or "%" in os.path.basename(path)) and not is_network(path)


class VideoReader:
    """Opens a video and decodes it to RGB frames.

    Errors are raised at construction (missing file, no video stream, unknown codec) so that a
    pipeline fails at start, not halfway through.
    """

    def __init__(self, uri: str, *, threads: int = 0, options: dict[str, str] | None = None,
                 timeout_s: float | None = 10.0, hwaccel=None):
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
            extra = {"hwaccel": hwaccel} if hwaccel is not None else {}
            self._container = av.open(path, format=fmt, options=options or {}, timeout=timeout_s, **extra)
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
        self.duration_s = self._container.duration / 1e6 if self._container.duration else None
        self.errors = 0
        self.on_packet = None  # called with (packet, stream) for every demuxed packet (smart record)

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
            if self.on_packet is not None:
                self.on_packet(packet, self._stream)
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
