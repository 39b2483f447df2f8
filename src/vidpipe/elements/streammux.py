"""streammux: batches frames from N sources (nvstreammux's role)."""
from __future__ import annotations

import time

from ..core.element import Element, Pad, _Stopped, request_pad_index
from ..core.events import EOS, StreamEOS, StreamStart
from ..core.fifo import Empty, Fifo, Full
from ..core.meta import Batch, Frame
from ..core.props import Prop
from ..core.registry import register
from ..errors import LinkError
from ..core.tensors import is_tensor


class _MuxPad(Pad):
    """Sink pads of the muxer share one queue; items are tagged with the pad index."""

    def __init__(self, mux: "StreamMux", index: int):
        super().__init__(mux, f"sink_{index}", "sink")
        self.index = index
        self.queue = mux._inbox

    def _enqueue(self, item) -> None:  # type: ignore[override]
        stop = self.element._abort
        if self.leaky and isinstance(item, Batch):  # live source: drop this pad's oldest batch
            mine = self.index
            if self.queue.drop_oldest(lambda e: e[0] == mine and isinstance(e[1], Batch)) is not None:
                self.dropped += 1
                self.element.stats["dropped"] += 1
        while True:
            try:
                self.queue.put((self.index, item), timeout=0.1)
                return
            except Full:
                if stop.is_set():
                    raise _Stopped() from None


@register("streammux", aliases={"nvstreammux": {}})
class StreamMux(Element):
    """Collects frames from request pads sink_0..sink_N into batches of `batch-size`.
    A frame's source_id becomes its pad index. Per-stream order is kept."""

    description = "batch frames of several streams"
    sink_pad_names = ()
    batch_size = Prop(int, 1, "frames per batch", minimum=1, maximum=1024)
    batched_push_timeout = Prop(int, -1, "push an incomplete batch after this many microseconds "
                                "(-1: wait until the batch is full or the streams end)")
    width = Prop(int, 0, "scale frames to this width (0: keep the source size)", minimum=0)
    height = Prop(int, 0, "scale frames to this height (0: keep the source size)", minimum=0)
    enable_padding = Prop(bool, False, "keep aspect ratio when scaling, padding with black")
    live_source = Prop(bool, False, "sources are live: push on timeout so latency stays bounded")

    def __init__(self, name: str | None = None, **props):
        self._inbox = Fifo(8)
        super().__init__(name, **props)
        self._active: set[int] = set()
        self._removed: set[int] = set()   # pads released at runtime (Pipeline.remove_source)
        self._waiting_for_sources = False  # the last stream was removed, not ended: stay up for new ones

    def request_pad(self, name: str = "sink_%u") -> Pad:
        index = request_pad_index(self, name, "sink", self.sink_pads)  # a freed id is reused, as in DeepStream
        if f"sink_{index}" in self.sink_pads:
            raise LinkError(f"streammux '{self.name}': pad sink_{index} already requested")
        pad = _MuxPad(self, index)
        self.sink_pads[pad.name] = pad
        self._active.add(index)
        self._inbox = pad.queue  # same object; keeps type checkers quiet
        return pad

    def get_static_pad(self, name: str) -> Pad:
        if name.startswith("sink_") and name not in self.sink_pads:
            return self.request_pad(name)
        return super().get_static_pad(name)

    def start(self) -> None:
        if not self.sink_pads:
            raise LinkError(f"streammux '{self.name}' has no inputs: link sources to it "
                            "(src.link(mux) or 'm.sink_0' in a launch string)")
        if (self.width > 0) != (self.height > 0):
            raise LinkError(f"streammux '{self.name}': set both width and height to scale, or neither")

    def _scale(self, frame: Frame) -> Frame:
        import cv2
        import numpy as np

        w, h = self.width, self.height
        img = frame.image
        ih, iw = img.shape[:2]
        if (iw, ih) == (w, h):
            return frame
        if is_tensor(img):
            from ..gpu.draw import resize_rgb
            frame.image = resize_rgb(img, w, h, pad=self.enable_padding)
            return frame
        if self.enable_padding:
            s = min(w / iw, h / ih)
            nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
            out = np.zeros((h, w, 3), np.uint8)
            out[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        else:
            out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        frame.image = out
        return frame

    def _run(self) -> None:
        timeout_s = self.batched_push_timeout / 1e6 if self.batched_push_timeout > 0 else None
        scale = self.width > 0 and self.height > 0
        frames: list[Frame] = []
        first_at = 0.0
        stop = self._abort
        while True:
            if not self._active and (not self._waiting_for_sources or
                                     (self.pipeline is not None and self.pipeline._eos_requested.is_set())):
                break
            wait = 0.1
            if frames and timeout_s is not None:
                wait = max(0.0, min(wait, first_at + timeout_s - time.monotonic()))
            try:
                index, item = self._inbox.get(timeout=wait)
            except Empty:
                if stop.is_set():
                    raise _Stopped()
                if frames and timeout_s is not None and time.monotonic() >= first_at + timeout_s:
                    self._push_batch(frames)
                    frames = []
                continue
            if isinstance(item, Batch):
                for f in item.frames:
                    f.source_id = index
                    if scale:
                        f = self._scale(f)
                    if not frames:
                        first_at = time.monotonic()
                    frames.append(f)
                    if len(frames) >= self.batch_size:
                        self._push_batch(frames)
                        frames = []
            elif isinstance(item, EOS):
                self._active.discard(index)
                pad = self.sink_pads.pop(f"sink_{index}", None)
                if pad is not None and pad.peer is not None:
                    pad.peer.peer = None  # release the pad: its index can be reused
                self._waiting_for_sources = index in self._removed
                self._removed.discard(index)
            elif isinstance(item, StreamEOS):
                if frames and any(f.source_id == index for f in frames):
                    self._push_batch(frames)  # the stream's frames go out before its EOS
                    frames = []
                self.push(StreamEOS(index))
            elif isinstance(item, StreamStart):
                self.push(StreamStart(index, item.uri, item.fps))
        if frames:
            self._push_batch(frames)
        self.push(EOS())

    def release(self, index: int) -> None:
        """Mark a pad as removed at runtime (its EOS does not end the muxer)."""
        self._removed.add(index)

    def drain_after_failure(self) -> None:
        while self._active:
            try:
                index, item = self._inbox.get(timeout=0.1)
            except Empty:
                if self._abort.is_set():
                    raise _Stopped() from None
                continue
            if isinstance(item, EOS):
                self._active.discard(index)
        self.push(EOS())

    def _push_batch(self, frames: list[Frame]) -> None:
        self.stats["batches"] += 1
        self.stats["frames"] += len(frames)
        self.push(Batch(list(frames)))
