"""Elements, pads and probes."""
from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..errors import LinkError, PropertyError
from .events import EOS, Event
from .fifo import Empty, Fifo, Full
from .meta import Batch
from .props import Prop

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger("vidpipe")


class PadProbeReturn(enum.Enum):
    """What a probe callback returns (None means OK)."""

    OK = "ok"          # pass the batch on
    DROP = "drop"      # drop this batch
    REMOVE = "remove"  # pass it on and remove this probe


ProbeCallback = Callable[["Pad", Batch], "PadProbeReturn | None"]


class _Stopped(Exception):
    """Raised inside element threads when the pipeline aborts."""


class Pad:
    """A connection point. Src pads push to one peer sink pad; sink pads own a bounded queue."""

    def __init__(self, element: "Element", name: str, direction: str, *, queue_size: int = 4):
        self.element, self.name, self.direction = element, name, direction
        self.peer: Pad | None = None
        self._probes: dict[int, ProbeCallback] = {}
        self._next_probe = 0
        self.queue: Fifo = Fifo(queue_size) if direction == "sink" else None  # type: ignore[assignment]
        self.leaky = False       # drop the oldest batch instead of blocking (live sources)
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<Pad {self.element.name}.{self.name}>"

    # -- probes ------------------------------------------------------------------------------
    def add_probe(self, callback: ProbeCallback) -> int:
        """Call `callback(pad, batch)` for every batch crossing this pad; returns a probe id."""
        pid = self._next_probe
        self._next_probe += 1
        self._probes = {**self._probes, pid: callback}
        return pid

    def remove_probe(self, probe_id: int) -> None:
        probes = dict(self._probes)
        probes.pop(probe_id, None)
        self._probes = probes

    def _run_probes(self, batch: Batch) -> bool:
        for pid, cb in list(self._probes.items()):
            ret = cb(self, batch)
            if ret is PadProbeReturn.DROP:
                return False
            if ret is PadProbeReturn.REMOVE:
                self.remove_probe(pid)
            elif ret not in (None, PadProbeReturn.OK):
                raise TypeError(f"probe on {self!r} returned {ret!r}; return PadProbeReturn.OK/DROP/REMOVE or None")
        return True

    # -- data flow ---------------------------------------------------------------------------
    def link(self, sink: "Pad") -> None:
        if self.direction != "src" or sink.direction != "sink":
            raise LinkError(f"cannot link {self!r} -> {sink!r}: link a src pad to a sink pad")
        if self.peer is not None or sink.peer is not None:
            raise LinkError(f"cannot link {self!r} -> {sink!r}: a pad is already linked")
        self.peer, sink.peer = sink, self

    def push(self, item: Batch | Event) -> None:
        """Called in the producing element's thread."""
        if isinstance(item, Batch):
            item.compact()  # rows removed upstream leave the table here, not while views are in use
            if self._probes and not self._run_probes(item):
                return
            peer = self.peer
            if peer is None:
                return
            if peer._probes and not peer._run_probes(item):
                return
            item.compact()
            peer._enqueue(item)
        elif self.peer is not None:
            self.peer._enqueue(item)

    def _enqueue(self, item: Batch | Event) -> None:
        q, stop = self.queue, self.element._abort
        if self.leaky and isinstance(item, Batch) and q.drop_oldest(_is_batch) is not None:
            self.dropped += 1  # the oldest batch (never an event) made room
            self.element.stats["dropped"] += 1
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except Full:
                if stop.is_set():
                    raise _Stopped() from None

    def get(self) -> Batch | Event:
        stop = self.element._abort
        while True:
            try:
                return self.queue.get(timeout=0.1)
            except Empty:
                if stop.is_set():
                    raise _Stopped() from None


def _is_batch(item: Any) -> bool:
    return isinstance(item, Batch)


_name_counters: dict[str, Iterator[int]] = {}
_name_lock = threading.Lock()


def _default_name(factory: str) -> str:
    """GStreamer's way: the factory name and a per-factory counter (streammux0, streammux1 ...)."""
    with _name_lock:
        counter = _name_counters.setdefault(factory, itertools.count())
        return f"{factory}{next(counter)}"


def request_pad_index(element: "Element", name: str, prefix: str, taken: dict) -> int:
    """The index of a request pad named `prefix_%u` (the lowest free one) or `prefix_N`."""
    if name == f"{prefix}_%u":
        index = 0
        while f"{prefix}_{index}" in taken:
            index += 1
        return index
    head, _, tail = name.rpartition("_")
    if head == prefix and tail.isdigit():
        return int(tail)
    raise LinkError(f"{element.factory_name} pads are named {prefix}_0, {prefix}_1, ...; got '{name}'")


class Element:
    """Base of all elements. Subclasses declare `Prop`s and override `process` (or `generate`)."""

    factory_name = "element"
    description = ""
    sink_pad_names: tuple[str, ...] = ("sink",)
    src_pad_names: tuple[str, ...] = ("src",)
    src_optional = False  # True: the src pad may stay unlinked (a tap that is also a sink)
    _props_decl: dict[str, Prop] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        decl: dict[str, Prop] = {}
        for base in reversed(cls.__mro__):
            for v in vars(base).values():
                if isinstance(v, Prop):
                    decl[v.name] = v
        cls._props_decl = decl

    def __init__(self, name: str | None = None, **props: Any):
        self._props: dict[str, Any] = {}
        self.name = name or _default_name(self.factory_name)
        self.pipeline: Pipeline | None = None
        self._abort = threading.Event()
        self._wake = threading.Event()  # interrupts a source's real-time waits
        self.sink_pads = {n: Pad(self, n, "sink") for n in self.sink_pad_names}
        self.src_pads = {n: Pad(self, n, "src") for n in self.src_pad_names}
        self.stats: dict[str, float] = {"batches": 0, "frames": 0, "busy_s": 0.0, "dropped": 0}
        self.failed = False
        self.bypass = False   # at runtime: batches pass through untouched (a one-in one-out element only)
        for k, v in props.items():
            self.set_property(k, v)

    # properties that may change while the pipeline runs (besides "enabled" on one-in one-out elements)
    live_properties: tuple[str, ...] = ()

    def check_live(self, key: str, value: Any) -> Any:
        """The value `set_live(key, value)` would set; raises PropertyError if it may not."""
        one = len(self.sink_pads) == 1 and len(self.src_pads) == 1
        if key == "enabled" and one:
            if not isinstance(value, bool):
                raise PropertyError(f"{self.name}: 'enabled' takes true or false, got {value!r}")
            return value
        name = key.replace("_", "-").lower()
        if name not in self.live_properties:
            can = sorted({*self.live_properties, *(["enabled"] if one else [])})
            raise PropertyError(f"{self.name}: '{key}' cannot change while running (can: {', '.join(can) or 'none'})")
        return self._find_prop(name).coerce(value, owner=self.name)

    def set_live(self, key: str, value: Any) -> Any:
        """Changes a property while running where that is safe (`live_properties`, or "enabled"
        to bypass a one-in one-out element); returns the value set."""
        value = self.check_live(key, value)
        if key == "enabled":
            self.bypass = not value
            return value
        name = key.replace("_", "-").lower()
        self.set_property(name, value)
        self.live_changed(name)
        return value

    def live_changed(self, name: str) -> None:
        """Called after set_live changed `name` (elements apply it to their running state)."""

    # -- properties --------------------------------------------------------------------------
    @classmethod
    def properties(cls) -> dict[str, Prop]:
        return dict(cls._props_decl)

    @classmethod
    def _find_prop(cls, key: str) -> Prop:
        name = key.replace("_", "-").lower()
        p = cls._props_decl.get(name)
        if p is None:
            known = ", ".join(sorted(cls._props_decl)) or "(none)"
            raise PropertyError(f"element '{cls.factory_name}' has no property '{key}'; known: {known}")
        return p

    def set_property(self, key: str, value: Any) -> None:
        p = self._find_prop(key)
        self._props[p.attr] = p.coerce(value, owner=self.name)

    def get_property(self, key: str) -> Any:
        return getattr(self, self._find_prop(key).attr)

    # -- pads --------------------------------------------------------------------------------
    @property
    def sink_pad(self) -> Pad:
        return self.get_static_pad("sink")

    @property
    def src_pad(self) -> Pad:
        return self.get_static_pad("src")

    def get_static_pad(self, name: str) -> Pad:
        pad = self.sink_pads.get(name) or self.src_pads.get(name)
        if pad is None:
            raise LinkError(f"element '{self.name}' has no pad '{name}'; pads: "
                            f"{', '.join([*self.sink_pads, *self.src_pads]) or '(none)'}")
        return pad

    def request_pad(self, name: str) -> Pad:
        """Request pads (e.g. streammux's sink_%u). Elements that have them override this."""
        raise LinkError(f"element '{self.name}' ({self.factory_name}) has no request pad '{name}'")

    def link(self, other: "Element") -> "Element":
        """Link this element's first free src pad to `other`'s first free sink pad; returns other."""
        src = next((p for p in self.src_pads.values() if p.peer is None), None)
        if src is None:
            raise LinkError(f"'{self.name}' has no free src pad to link to '{other.name}'")
        sink = next((p for p in other.sink_pads.values() if p.peer is None), None)
        if sink is None:
            sink = other.request_pad("sink_%u")
        src.link(sink)
        return other

    # -- lifecycle (override) ----------------------------------------------------------------
    def start(self) -> None:
        """Open files, load models. Runs in the caller's thread so errors surface before data flows."""

    def negotiate(self) -> None:
        """After every element's start(), before any thread runs: look at the neighbours (the
        frame sizes the sources will deliver, say) and prepare for them - work that must not run
        while other threads use the device, like capturing CUDA graphs."""

    def process(self, batch: Batch) -> Batch | Iterable[Batch] | None:
        """Handle one batch; return it (or new ones) to push downstream, or None to drop."""
        return batch

    def handle_event(self, event: Event) -> None:
        self.push(event)

    def finish(self) -> Iterable[Batch]:
        """Called at EOS before EOS goes downstream: flush what is buffered."""
        return ()

    def stop(self) -> None:
        """Release resources. Always called once, after the thread ended or on abort."""

    # -- runtime -----------------------------------------------------------------------------
    def push(self, item: Batch | Event, pad: str = "src") -> None:
        p = self.src_pads.get(pad)
        if p is not None:
            p.push(item)

    def post(self, kind: str, text: str, **data: Any) -> None:
        if self.pipeline is not None:
            self.pipeline.bus.post(kind, self, text, **data)

    def _emit(self, out: Batch | Iterable[Batch] | None) -> None:
        if out is None:
            return
        if isinstance(out, Batch):
            self.push(out)
        else:
            for b in out:
                self.push(b)

    def _run(self) -> None:
        """Thread body of a one-sink element."""
        pad = next(iter(self.sink_pads.values()))
        while True:
            item = pad.get()
            if isinstance(item, Batch):
                if self.failed:
                    continue
                t0 = time.perf_counter()
                out = item if self.bypass else self.process(item)
                self.stats["busy_s"] += time.perf_counter() - t0
                self.stats["batches"] += 1
                self.stats["frames"] += len(item.frames)
                self._emit(out)
            elif isinstance(item, EOS):
                if not self.failed:
                    self._emit(self.finish())
                self.push(item)
                return
            else:
                self.handle_event(item)

    def drain_after_failure(self) -> None:
        """After a failure: swallow batches until EOS on every sink pad, then pass EOS on, so
        upstream never blocks and downstream still finalises its outputs."""
        for pad in self.sink_pads.values():
            while not isinstance(pad.get(), EOS):
                pass
        for name in self.src_pads:
            self.push(EOS(), name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Source(Element):
    """An element with no sink pad; override `generate()`."""

    sink_pad_names = ()
    live = False

    def generate(self) -> Iterator[Batch | Event]:
        raise NotImplementedError

    def _run(self) -> None:
        self.started_at = time.perf_counter()
        gen = self.generate()
        after_stop = 0
        try:
            for item in gen:
                if self._stop_requested():
                    # generators check the stop flag themselves and end with StreamEOS; from a
                    # source that does not, pass on events only, and not for long
                    after_stop += 1
                    if after_stop > 100:
                        break
                    if isinstance(item, Batch):
                        continue
                if isinstance(item, Batch):
                    pl = self.pipeline
                    if pl is not None and not pl._playing.is_set():
                        while not pl._playing.wait(0.1):      # paused: hold this frame
                            if self._stop_requested():
                                break
                    self.stats["batches"] += 1
                    self.stats["frames"] += len(item.frames)
                self.push(item)
        finally:
            close = getattr(gen, "close", None)
            if close:
                close()
        self.push(EOS())

    def drain_after_failure(self) -> None:
        self.push(EOS())

    _stop_flag: bool = False

    def request_stop(self) -> None:
        """Ask this source alone to end its stream (runtime removal)."""
        self._stop_flag = True
        self._wake.set()

    def _stop_requested(self) -> bool:
        return self._stop_flag or (self.pipeline is not None and self.pipeline._eos_requested.is_set())


class Sink(Element):
    """An element with no src pad."""

    src_pad_names = ()
