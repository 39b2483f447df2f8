"""streammux: batches frames from N sources (nvstreammux's role)."""
from __future__ import annotations

import sys
import time
from operator import attrgetter
from queue import SimpleQueue

from ..core.element import Element, Pad, _Stopped, request_pad_index
from ..core.events import EOS, StreamEOS, StreamStart
from ..core.fifo import Empty
from ..core.meta import Batch, Frame
from ..core.props import Prop
from ..core.registry import register
from ..core.tensors import is_tensor
from ..errors import LinkError

PAD_QUEUE = 4  # frames a source may queue ahead of the muxer
OVERFLOW_AFTER_S = 0.002  # a full pad waits this long for the other streams before its stream takes more
_source_of = attrgetter("source_id")


def _patience(frame: Frame) -> float:
    """How long a full pad waits for the others, from the first frame of a run. Frames on the GPU:
    OVERFLOW_AFTER_S (5 ms cost 22-36% at 16 streams on an H100). Frames on the CPU: two switch
    intervals of the interpreter, since a source whose frame is decoded may wait that long for the
    GIL; with 2 ms, 16 sources on a 2-core machine were taken for stalled often enough that 15-50%
    of the batches lacked a stream and held another twice, some all 16 frames of one
    (benchmarks/RESULTS.md)."""
    if is_tensor(frame.nv12) or (frame.has_rgb and is_tensor(frame.image)):
        return OVERFLOW_AFTER_S
    return max(OVERFLOW_AFTER_S, 2 * sys.getswitchinterval())


class _MuxPad(Pad):
    """A sink pad of the muxer: a bounded queue of its own (a source that runs ahead waits on
    its own pad, not on a queue shared with the others), and rings the muxer's bell with itself."""

    def __init__(self, mux: "StreamMux", index: int):
        super().__init__(mux, f"sink_{index}", "sink", queue_size=PAD_QUEUE)
        self.index = index

    def _enqueue(self, item) -> None:  # type: ignore[override]
        super()._enqueue(item)
        self.element._bell.put(self)


@register("streammux", aliases={"nvstreammux": {}})
class StreamMux(Element):
    """Collects frames from request pads sink_0..sink_N into batches of `batch-size`.
    A frame's source_id becomes its pad index. Per-stream order is kept.

    Round robin, as nvstreammux: a batch takes at most ceil(batch-size / streams) frames of each
    stream while other streams have frames to give, so with a batch as large as the number of
    streams each batch holds one frame of every stream. A stream that runs ahead waits on its
    own pad (PAD_QUEUE frames); when such a pad is full and the streams it waits for have given
    nothing for a short while (2 ms on the GPU, two switch intervals on the CPU: _patience), they
    count as stalled and batches fill without them until one of them gives a frame: a stalled
    camera holds the others up once, for that long, not until it comes back.
    batched-push-timeout still pushes what there is when it runs out.
    Per-stream work downstream (the tracker, analytics) goes once per round of distinct streams
    in a batch; taken first come first served (before), a batch of 16 frames of 16 streams held
    2 to 8 streams, and the tracker ran four to eight times per batch. The cost: streams keep
    pace with each other, so where some decode faster (64 files on 7 NVDEC engines) the fast
    ones wait (benchmarks/RESULTS.md, run R section: +7% at 16 streams and -3% at 64 on an H100)."""

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
        self._bell: SimpleQueue = SimpleQueue()  # the pad, for every item queued on a sink pad
        self._stalled: set[int] = set()
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
        self._frames: list[Frame] = []
        self._counts: dict[int, int] = {}  # frames of each stream in the batch being collected
        self._held: dict[Pad, None] = {}   # pads whose next frame is beyond their share, in order
        self._pushed = False
        self._scaling = self.width > 0 and self.height > 0
        self._patience = 0.0  # set from the run's first frame (_patience)
        first_at = 0.0
        full_since = None  # since when a held pad has been full with nothing else to take
        bell, stop = self._bell, self._abort
        while True:
            if not self._active and (not self._waiting_for_sources or
                                     (self.pipeline is not None and self.pipeline._eos_requested.is_set())):
                break
            had = bool(self._frames)
            try:
                pad = bell.get(block=False)  # a pad that was given an item (maybe taken already)
            except Empty:
                full = self._full_held()
                pad = self._overflow(full, full_since)  # nothing new: may a full pad give more?
                if pad is None:
                    now = time.monotonic()
                    full_since = None if full is None else (full_since or now)
                    wait = 0.1
                    if self._frames and timeout_s is not None:
                        wait = max(0.0, min(wait, first_at + timeout_s - now))
                    if full_since is not None:
                        wait = max(0.0, min(wait, full_since + self._patience - now))
                    try:
                        pad = bell.get(timeout=wait)
                    except Empty:
                        if stop.is_set():
                            raise _Stopped() from None
                        if self._frames and timeout_s is not None and time.monotonic() >= first_at + timeout_s:
                            self._push_collected()
                            self._settle()
                        continue
                    self._drain(pad)
            else:
                self._drain(pad)
            full_since = None
            self._settle()
            if self._frames and not had:
                first_at = time.monotonic()
        if self._frames:
            self._push_collected()
        self.push(EOS())

    def _share(self) -> int:
        return -(-self.batch_size // max(1, len(self._active)))

    def _drain(self, pad: Pad) -> None:
        """Takes `pad`'s items up to its next frame beyond its share of the batch (then the pad
        is held until the batch goes)."""
        q, share = pad.queue, self._share()
        while q.qsize():
            if isinstance(q.peek(), Batch) and self._counts.get(pad.index, 0) >= share:
                self._held[pad] = None
                return
            self._handle(pad, q.get())
        self._held.pop(pad, None)

    def _settle(self) -> None:
        """After a batch went: the held pads give their frames to the next, in the order held."""
        while self._pushed:
            self._pushed = False
            held = list(self._held)
            self._held.clear()
            for pad in held:
                self._drain(pad)

    def _full_held(self) -> Pad | None:
        for pad in self._held:
            if pad.queue.qsize() >= pad.queue.maxsize:
                return pad
        return None

    def _overflow(self, full: Pad | None, full_since: float | None) -> Pad | None:
        """Nothing new: a held pad that is full (its source waits) gives a frame beyond its
        share when the streams it waits for are stalled: they gave nothing for self._patience,
        or were found so before and none of them has given a frame since (self._stalled)."""
        if full is None or not (self._stalled or (full_since is not None and
                                                   time.monotonic() - full_since >= self._patience)):
            return None
        if not self._stalled:
            share = self._share()
            self._stalled = {p.index for p in list(self.sink_pads.values())
                             if self._counts.get(p.index, 0) < share and not p.queue.qsize()}
        self._handle(full, full.queue.get())
        self._drain(full)
        return full

    def _handle(self, pad: Pad, item) -> None:
        index = pad.index
        if isinstance(item, Batch):
            if index in self._stalled:
                self._stalled.clear()  # it is back: batches wait for every stream again
            if not self._patience and item.frames:
                self._patience = _patience(item.frames[0])
            for f in item.frames:
                f.source_id = index
                if self._scaling:
                    f = self._scale(f)
                self._frames.append(f)
                self._counts[index] = self._counts.get(index, 0) + 1
                if len(self._frames) >= self.batch_size:
                    self._push_collected()
        elif isinstance(item, EOS):
            self._active.discard(index)
            self._stalled.discard(index)
            if self.sink_pads.get(pad.name) is pad:
                del self.sink_pads[pad.name]
            if pad.peer is not None:
                pad.peer.peer = None  # release the pad: its index can be reused
            self._waiting_for_sources = index in self._removed
            self._removed.discard(index)
        elif isinstance(item, StreamEOS):
            if self._counts.get(index):
                self._push_collected()  # the stream's frames go out before its EOS
            self.push(StreamEOS(index))
        elif isinstance(item, StreamStart):
            self.push(StreamStart(index, item.uri, item.fps))

    def _push_collected(self) -> None:
        frames, self._frames, self._counts = self._frames, [], {}
        self._pushed = True
        self._push_batch(frames)

    def release(self, index: int) -> None:
        """Mark a pad as removed at runtime (its EOS does not end the muxer)."""
        self._removed.add(index)

    def drain_after_failure(self) -> None:
        while self._active:
            for pad in list(self.sink_pads.values()):
                while pad.queue.qsize():
                    if isinstance(pad.queue.get(), EOS):
                        self._active.discard(pad.index)
            try:
                self._bell.get(timeout=0.1)
            except Empty:
                if self._abort.is_set():
                    raise _Stopped() from None
        self.push(EOS())

    def _push_batch(self, frames: list[Frame]) -> None:
        self.stats["batches"] += 1
        self.stats["frames"] += len(frames)
        # in source order (a stream's own frames stay in order): a stream keeps its place in the
        # batch from one batch to the next whatever order the frames came in. On a GPU a frame's
        # scores move by about 1e-4 with its place in the batch (the model's kernels), so a box
        # at the threshold could come and go between runs of one pipeline.
        self.push(Batch(sorted(frames, key=_source_of)))
