"""Sinks that are not video files: fakesink, appsink (callback and iterator), jsonsink."""
from __future__ import annotations

import json
import os
import queue
from typing import Any, Callable, Iterable, Iterator

from ..core.element import Element, Sink
from ..core.events import EOS
from ..core.meta import Batch
from ..core.props import Prop
from ..core.registry import register
from ..errors import MediaError


@register("fakesink", aliases={"nveglglessink": {}, "autovideosink": {}, "nv3dsink": {}})
class FakeSink(Sink):
    """Discards batches, counting frames (also stands in for display sinks when headless)."""

    description = "discard everything (counts frames)"
    sync = Prop(bool, False, "accepted for GStreamer compatibility")
    silent = Prop(bool, True, "accepted for GStreamer compatibility")

    def process(self, batch: Batch) -> None:
        return None


@register("appsink")
class AppSink(Sink):
    """Hands batches to the application: set `callback` (called in the sink's thread), or iterate
    the sink (`for batch in appsink: ...`) from another thread while the pipeline runs."""

    description = "deliver batches to Python code"
    callback = Prop(object, None, "callable(batch) run for every batch", nullable=True)
    max_buffers = Prop(int, 16, "batches held for the iterator before upstream blocks", minimum=1)
    drop = Prop(bool, False, "when the iterator lags, drop the oldest batch instead of blocking")

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self._out: queue.Queue = queue.Queue(maxsize=self.max_buffers)

    def process(self, batch: Batch) -> None:
        cb: Callable[[Batch], Any] | None = self.callback
        if cb is not None:
            cb(batch)
            return
        while True:
            try:
                self._out.put(batch, timeout=0.1)
                return
            except queue.Full:
                if self.drop:
                    try:
                        self._out.get_nowait()
                        self.stats["dropped"] += 1
                    except queue.Empty:
                        pass
                elif self._abort.is_set():
                    return

    def finish(self) -> Iterable[Batch]:
        self._out.put(EOS())
        return ()

    def stop(self) -> None:
        try:
            self._out.put_nowait(EOS())
        except queue.Full:
            pass

    def pull(self, timeout: float | None = None) -> Batch | None:
        """The next batch, or None at end of stream (or after `timeout` seconds)."""
        try:
            item = self._out.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, EOS):
            self._out.put(item)  # later pulls also see the end
            return None
        return item

    def __iter__(self) -> Iterator[Batch]:
        while True:
            b = self.pull()
            if b is None:
                return
            yield b


@register("jsonsink")
class JsonSink(Element):
    """Writes one JSON line per frame: source_id, frame_num, pts, objects (class_id, label,
    confidence, bbox [left, top, width, height], object_id, classifications). Also passes
    batches on when its src pad is linked (a metadata tap)."""

    src_optional = True

    description = "metadata as JSON lines"
    location = Prop(str, "out.jsonl", "output path")

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self._fh = None
        self.lines = 0

    def start(self) -> None:
        d = os.path.dirname(os.path.abspath(self.location))
        if not os.path.isdir(d):
            raise MediaError(f"{self.name}: output folder {d} does not exist")
        self._fh = open(self.location, "w", encoding="utf-8")

    def process(self, batch: Batch) -> Batch:
        assert self._fh is not None
        for f in batch.frames:
            self._fh.write(json.dumps(f.to_dict(), separators=(",", ":")) + "\n")
            self.lines += 1
        return batch

    def stop(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
