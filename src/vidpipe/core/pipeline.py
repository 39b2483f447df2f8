"""Pipeline: a set of linked elements, each running in its own thread behind bounded queues."""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

from ..errors import LinkError, PipelineError, PropertyError, VidpipeError
from .bus import Bus, MessageType
from .element import Element, _Stopped
from .streams import Streams

log = logging.getLogger("vidpipe")


class _SwitchInterval:
    """The interpreter's switch interval is one per process: while pipelines that set one run,
    the shortest of theirs applies; the last one to end puts the old one back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: list[float] = []
        self._saved = 0.0

    def ask(self, seconds: float) -> None:
        with self._lock:
            if not self._asked:
                self._saved = sys.getswitchinterval()
            self._asked.append(seconds)
            sys.setswitchinterval(min(self._asked))

    def give_back(self, seconds: float) -> None:
        with self._lock:
            self._asked.remove(seconds)
            sys.setswitchinterval(min(self._asked) if self._asked else self._saved)


_switch_interval = _SwitchInterval()


class Pipeline:
    """Holds elements, runs them, and reports through `bus`.

    >>> p = Pipeline()                       # doctest: +SKIP
    >>> p.add(src, mux, infer, osd, sink)    # doctest: +SKIP
    >>> p.link(src, mux, infer, osd, sink)   # doctest: +SKIP
    >>> p.run()                              # doctest: +SKIP
    """

    def __init__(self, name: str = "pipeline"):
        self.name = name
        self.elements: list[Element] = []
        self.bus = Bus()
        self._threads: dict[str, threading.Thread] = {}
        self._eos_requested = threading.Event()
        self._playing = threading.Event()
        self._playing.set()
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()
        self.start_time = 0.0
        self.smart_record = SmartRecord(self)
        self.streams = Streams(self)
        self.services: list[Any] = []   # HTTP services (serve()): stopped when the pipeline ends
        self.serve_address = ""         # a YAML/Flow `http:` option: served by run() / the CLI
        # The interpreter's switch interval while this pipeline runs (seconds; None or 0: the
        # interpreter's own). Decoding in this process with many streams, a shorter one can help:
        # decoders wait for the GIL behind the busy elements (docs/gpu.md).
        self.switch_interval: float | None = None
        self._asked_interval = 0.0

    # -- building ----------------------------------------------------------------------------
    def add(self, *elements: Element) -> "Pipeline":
        for el in elements:
            if any(e.name == el.name for e in self.elements):
                raise LinkError(f"pipeline already has an element named '{el.name}'")
            el.pipeline = self
            self.elements.append(el)
            if self._started:
                self._start_element(el)
        return self

    def link(self, *elements: Element) -> "Pipeline":
        """Link elements in a chain: link(a, b, c) = a -> b -> c. Adds any not yet added."""
        for el in elements:
            if el.pipeline is not self:
                self.add(el)
        for a, b in zip(elements, elements[1:]):
            a.link(b)
        return self

    def get_by_name(self, name: str) -> Element:
        for el in self.elements:
            if el.name == name:
                return el
        raise KeyError(f"no element named '{name}' in the pipeline")

    def __getitem__(self, name: str) -> Element:
        return self.get_by_name(name)

    # -- running -----------------------------------------------------------------------------
    def start(self) -> "Pipeline":
        if self._started:
            return self
        for el in self.elements:
            for pad in el.src_pads.values():
                if pad.peer is None and not el.src_optional:
                    raise LinkError(f"{pad!r} is not linked: link it to a sink (e.g. fakesink)")
            for pad in el.sink_pads.values():
                if pad.peer is None:
                    raise LinkError(f"{pad!r} is not linked: nothing feeds element '{el.name}'")
        started: list[Element] = []
        try:
            for el in self.elements:  # start sinks before sources (reverse order) is not needed:
                el.start()            # threads only begin after every start() succeeded
                started.append(el)
            for el in self.elements:
                el.negotiate()
        except BaseException:
            for el in reversed(started):
                self._safe_stop(el)
            raise
        self._asked_interval = max(float(self.switch_interval or 0.0), 0.0)
        if self._asked_interval:
            _switch_interval.ask(self._asked_interval)
        self.start_time = time.perf_counter()
        self._started = True
        for el in self.elements:
            self._spawn(el)
        return self

    def _start_element(self, el: Element) -> None:
        el.start()
        self._spawn(el)

    def _spawn(self, el: Element) -> None:
        t = threading.Thread(target=self._thread_main, args=(el,), name=f"vidpipe:{el.name}", daemon=True)
        self._threads[el.name] = t
        t.start()

    def _thread_main(self, el: Element) -> None:
        try:
            el._run()
        except _Stopped:
            pass
        except Exception as e:  # report, then keep the flow draining so outputs get finalised
            el.failed = True
            detail = str(e) if isinstance(e, VidpipeError) else f"{type(e).__name__}: {e}"
            log.debug("element %s failed", el.name, exc_info=True)
            self.bus.post(MessageType.ERROR, el, detail, exception=e)
            self._eos_requested.set()
            try:
                el.drain_after_failure()
            except _Stopped:
                pass
        finally:
            el.stats["cpu_s"] = time.thread_time()  # the element thread's CPU time (stats(), benches)

    def serve(self, address: str = "127.0.0.1:8080", **kw: Any) -> Any:
        """Starts the HTTP service (REST API, /metrics, browser console) for this pipeline; see
        vidpipe.service.Service for the options. It stops when the pipeline ends."""
        from ..service import Service
        svc = Service(self, address, **kw).start()
        self.services.append(svc)
        return svc

    def pause(self) -> None:
        """Sources hold their next frame until play(); what is in flight finishes."""
        self._playing.clear()

    def play(self) -> None:
        self._playing.set()

    @property
    def state(self) -> str:
        """ready (not started), playing, paused, stopping (EOS asked) or stopped."""
        if not self._started:
            return "ready"
        if not self.is_running():
            return "stopped"
        if self._eos_requested.is_set():
            return "stopping"
        return "playing" if self._playing.is_set() else "paused"

    def send_eos(self) -> None:
        """Ask every source to stop; the EOS then flows through and finalises every output."""
        self._eos_requested.set()
        self._playing.set()
        for el in self.elements:
            el._wake.set()

    # -- sources added and removed while running ---------------------------------------------
    def add_source(self, source: Element, mux: Element) -> int:
        """Links `source` to a new pad of `mux` and starts it (also while running). Returns the
        stream's source id (the muxer pad index)."""
        pad = mux.request_pad("sink_%u")
        source.src_pad.link(pad)
        try:
            self.add(source)
        except BaseException:  # it could not start (missing file ...): leave the pipeline as it was
            self.elements = [e for e in self.elements if e is not source]
            source.pipeline = None
            source.src_pad.peer = pad.peer = None
            mux.sink_pads.pop(pad.name, None)
            getattr(mux, "_active", set()).discard(int(pad.name.split("_")[1]))
            raise
        return int(pad.name.split("_")[1])

    def remove_source(self, source: Element, timeout: float = 10.0) -> None:
        """Ends `source`'s stream (its frames in flight still go through), releases its muxer
        pad and removes it; posts stream-removed. The pipeline goes on."""
        pad = source.src_pad.peer
        mux = pad.element if pad is not None else None
        if mux is not None and hasattr(mux, "release"):
            mux.release(int(pad.name.split("_")[1]))
        source.request_stop()
        t = self._threads.pop(source.name, None)
        if t is not None:
            t.join(timeout)
        deadline = time.monotonic() + timeout  # returns once the muxer has released the pad
        while mux is not None and pad is not None and mux.sink_pads.get(pad.name) is pad and \
                time.monotonic() < deadline and self.is_running():
            time.sleep(0.001)
        self._safe_stop(source)
        self.elements = [e for e in self.elements if e is not source]
        source.pipeline = None
        self.bus.post(MessageType.STREAM_REMOVED, source, f"{source.name} removed",
                      source_id=int(pad.name.split("_")[1]) if pad is not None else -1)

    def is_running(self) -> bool:
        return any(t.is_alive() for t in self._threads.values())

    def wait(self, timeout: float | None = None) -> bool:
        """Dispatch bus messages until every element's thread ended; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.bus.dispatch(timeout=0.05)
            if not self.is_running():
                self.bus.dispatch()
                self._finalise()
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop: EOS from the sources, wait up to `timeout`, then abort what is left."""
        if not self._started:
            return
        self.send_eos()
        if not self.wait(timeout):
            log.warning("pipeline did not drain in %.1fs; aborting", timeout)
            for el in self.elements:
                el._abort.set()
            for t in self._threads.values():
                t.join(2.0)
            self._finalise()

    def _finalise(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for el in self.elements:
            self._safe_stop(el)
        if self._asked_interval:
            _switch_interval.give_back(self._asked_interval)
            self._asked_interval = 0.0
        for svc in self.services:
            svc.stop()
        self.bus.dispatch()
        if not self.bus.errors():
            self.bus.post(MessageType.EOS, self.name, "end of stream")
            self.bus.dispatch()

    def _safe_stop(self, el: Element) -> None:
        try:
            el.stop()
        except Exception as e:
            log.debug("stop of %s failed", el.name, exc_info=True)
            self.bus.post(MessageType.ERROR, el, f"while stopping: {type(e).__name__}: {e}", exception=e)

    def run(self, *, handle_signals: bool = True) -> "Pipeline":
        """start() + wait(); Ctrl-C / SIGTERM stop gracefully (a second Ctrl-C aborts).
        Raises PipelineError if any element posted an ERROR."""
        prev: dict[int, Any] = {}
        main = threading.current_thread() is threading.main_thread()
        if handle_signals and main:
            def on_signal(signum: int, _frame: Any) -> None:
                if self._eos_requested.is_set():
                    log.warning("second interrupt: aborting")
                    for el in self.elements:
                        el._abort.set()
                else:
                    log.warning("%s: finishing outputs (press Ctrl-C again to abort)",
                                signal.Signals(signum).name)
                    self.interrupted = signal.Signals(signum).name
                    self.send_eos()
            for s in (signal.SIGINT, signal.SIGTERM):
                prev[s] = signal.signal(s, on_signal)
        try:
            self.start()
            self.wait()
        finally:
            for s, h in prev.items():
                signal.signal(s, h)
            if self._started and self.is_running():
                self.stop()
        errors = self.bus.errors()
        if errors:
            raise PipelineError("; ".join(str(m) for m in errors), errors)
        return self

    interrupted: str | None = None

    def run_app(self, on_started: Any = None) -> int:
        """For scripts: start (then `on_started(pipeline)`, e.g. to print a URL), run, and turn
        the outcome into a process exit code: 0 done, 130 interrupted, 1 after an error, which is
        printed as one line on stderr."""
        import sys
        try:
            self.start()
            if on_started is not None:
                on_started(self)
            self.run()
        except VidpipeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 130 if self.interrupted else 0

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per element: batches, frames, busy_s (time in process()), dropped, cpu_s (its thread's
        CPU time; infer adds completion_cpu_s for its completion threads), queue_depth."""
        out = {}
        for el in self.elements:
            depth = {p.name: p.queue.qsize() for p in el.sink_pads.values()}
            out[el.name] = {**el.stats, "cpu_s": self.cpu_seconds(el), "queue_depth": depth}
        return out

    def cpu_seconds(self, el: Element) -> float:
        """CPU time of the element's thread so far: read while it runs where the platform allows
        (Linux), else as the thread left it when it ended."""
        t = self._threads.get(el.name)
        if t is not None and t.is_alive() and t.ident is not None and hasattr(time, "pthread_getcpuclockid"):
            try:
                return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
            except (OSError, ValueError):  # the thread ended meanwhile
                pass
        return float(el.stats.get("cpu_s", 0.0))

    # -- other ways to build -----------------------------------------------------------------
    @classmethod
    def from_launch(cls, description: str) -> "Pipeline":
        from .launch import parse_launch
        return parse_launch(description)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {' '.join(e.name for e in self.elements)}>"




class SmartRecord:
    """`pipeline.smart_record`: clips of a source's own encoded stream (sources with
    smart-record=1), cut from its packet cache without re-encoding. Callable from a probe:

        pad.element.pipeline.smart_record.start(frame, start_before=2, duration=7)

    The clip runs from the last keyframe at or before (the source's last frame - start_before) to
    duration after it; a start while a clip of that source is being written extends it. Each
    finished clip posts a "recording-done" bus message (path, first_pts, last_pts, duration,
    error) and calls the callbacks in `on_done`."""

    def __init__(self, pipeline: "Pipeline"):
        self.pipeline = pipeline
        self.on_done: list = []

    def _source(self, source_id: int):
        for el in self.pipeline.elements:
            if getattr(el, "recorder", None) is not None and el.stream_id() == source_id:
                return el
        ids = [el.stream_id() for el in self.pipeline.elements if getattr(el, "recorder", None) is not None]
        raise PropertyError(f"no source with smart record has source id {source_id} (smart-record sources: "
                            f"{ids or 'none; set smart-record=1 on a source'})")

    def _annotated(self):
        for el in self.pipeline.elements:
            if el.factory_name == "smartrecord":
                return el
        raise PropertyError("annotated smart record needs a smartrecord element after an encoder "
                            "(... ! osd ! encoder ! smartrecord ! ...)")

    def start(self, source: Any, start_before: float | None = None, duration: float | None = None, *,
              annotated: bool = False) -> str:
        """Starts (or extends) a clip; returns its file path. `source`: a Frame (the clip is timed
        from that frame, wherever the probe that saw it sits) or a source id (timed from the
        source's last frame). annotated: of the encoded osd output (a smartrecord element), else
        of the source's own packets."""
        frame_num = getattr(source, "frame_num", None)
        source_id = int(getattr(source, "source_id", source))
        if annotated:
            return self._annotated().start_recording(source_id, start_before, duration)
        return self._source(source_id).start_recording(start_before, duration, frame_num)

    def stop(self, source_id: int, *, annotated: bool = False):
        """Ends stream `source_id`'s clip now; returns its ClipInfo (None when none was running)."""
        if annotated:
            return self._annotated().stop_recording(source_id)
        return self._source(source_id).stop_recording()

    def _done(self, info) -> None:
        for cb in list(self.on_done):
            cb(info)
