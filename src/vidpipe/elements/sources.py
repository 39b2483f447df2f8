"""Sources: files and URIs through PyAV, decoded in the source's thread (FFmpeg threads)."""
from __future__ import annotations

import logging
from typing import Iterator

from ..core.clock import Pacer
from ..core.element import Source
from ..core.events import Event, StreamEOS, StreamStart
from ..core.meta import Batch, Frame
from ..core.props import Prop
from ..core.registry import register
from ..errors import PropertyError
from ..media.reader import VideoReader

log = logging.getLogger("vidpipe")


@register("urisrc", aliases={"uridecodebin": {}, "nvurisrcbin": {}, "filesrc": {}})
class UriSource(Source):
    """Reads and decodes a video file or URI (MP4/MKV/AVI/MOV, raw .h264/.h265, rtsp://, http://).
    Emits one-frame batches of RGB frames."""

    description = "file/URI source with decoding (PyAV/FFmpeg)"
    uri = Prop(str, "", "file path or URI (file://, rtsp://, http://)")
    location = Prop(str, "", "file path (same as uri; GStreamer's filesrc name)")
    source_id = Prop(int, 0, "source id stamped on frames (streammux replaces it with its pad index)")
    file_loop = Prop(bool, False, "restart from the beginning at end of file (timestamps keep growing)")
    num_buffers = Prop(int, -1, "stop after this many frames (-1: all)")
    decode_threads = Prop(int, 0, "FFmpeg decoder threads (0: automatic)")
    device = Prop(str, "cpu", "where frames are decoded: cpu or cuda:N")
    live = Prop(bool, False, "behave like a camera: emit frames in real time (paced by their timestamps)")

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.reader: VideoReader | None = None

    @property
    def path(self) -> str:
        return self.uri or self.location

    def start(self) -> None:
        if not self.path:
            raise PropertyError(f"{self.name}: set 'uri' (or 'location') to a video file or URI")
        if self.device != "cpu":
            raise PropertyError(f"{self.name}: device '{self.device}' needs the GPU build (vidpipe[gpu]); "
                                "use device=cpu")
        self.reader = VideoReader(self.path, threads=self.decode_threads)

    def generate(self) -> Iterator[Batch | Event]:
        reader = self.reader
        assert reader is not None
        self.post("stream-added", f"stream {self.source_id}: {self.path}", source_id=self.source_id,
                  uri=self.path, width=reader.width, height=reader.height, fps=reader.fps)
        yield StreamStart(self.source_id, self.path, reader.fps)
        n = 0
        pts_offset = 0.0
        pacer = Pacer()
        frame_dt = 1.0 / reader.fps if reader.fps else 0.04
        while True:
            first, last, count = None, -frame_dt, 0
            for df in reader:
                if self.live:
                    pacer.wait(pts_offset + df.pts_seconds, self._abort)
                frame = Frame(df.image, self.source_id, n, pts_offset + df.pts_seconds,
                              source_uri=self.path, source_size=(reader.width, reader.height))
                last = df.pts_seconds
                first = last if first is None else first
                count += 1
                yield Batch([frame])
                n += 1
                if 0 <= self.num_buffers <= n or self._stop_requested():
                    break
            else:
                if self.file_loop and not self._stop_requested() and n > 0:
                    reader.close()
                    self.reader = reader = VideoReader(self.path, threads=self.decode_threads)
                    if count > 1:  # the clip's own frame step (container rates can be rounded)
                        frame_dt = (last - first) / (count - 1)
                    pts_offset += last + frame_dt
                    continue
            break
        if n == 0:
            self.post("warning", f"{self.path}: no frame could be decoded", source_id=self.source_id)
        elif reader.errors:
            self.post("warning", f"{self.path}: {reader.errors} damaged packet(s) skipped",
                      source_id=self.source_id)
        self.post("stream-eos", f"stream {self.source_id} ended after {n} frames",
                  source_id=self.source_id, frames=n)
        yield StreamEOS(self.source_id)

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
