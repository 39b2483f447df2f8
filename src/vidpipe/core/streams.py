"""`pipeline.streams`: add and remove streams while the pipeline runs (nvmultiurisrcbin's role),
used from Python, from broker commands (messaging.commands) and from the HTTP API."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import PropertyError

if TYPE_CHECKING:
    from .element import Element
    from .pipeline import Pipeline


class Streams:
    """New streams are `urisrc` elements linked to the pipeline's streammux; `defaults` holds the
    properties every new stream gets (live, file-loop, smart-record ...), a call's own override
    them. A stream may carry a sensor id (DeepStream's camera_id), by which commands name it."""

    def __init__(self, pipeline: "Pipeline"):
        self.pipeline = pipeline
        self.defaults: dict[str, Any] = {}
        self.sensors: dict[str, str] = {}        # sensor id -> source element name
        self._lock = threading.Lock()
        self._n = 0

    def mux(self) -> "Element":
        muxes = [e for e in self.pipeline.elements if e.factory_name == "streammux"]
        if len(muxes) != 1:
            raise PropertyError(f"adding streams needs exactly one streammux in the pipeline (found {len(muxes)})")
        return muxes[0]

    def sources(self) -> list["Element"]:
        return [e for e in self.pipeline.elements if hasattr(e, "stream_id") and e.src_pad.peer is not None]

    def add(self, uri: str, *, sensor_id: str = "", name: str = "", **props: Any) -> int:
        """Starts a stream of `uri`; returns its source id. Raises PropertyError/MediaError (the
        pipeline is left as it was) when the source cannot start."""
        from .registry import make_element
        if not uri:
            raise PropertyError("a new stream needs a uri")
        with self._lock:
            if sensor_id and sensor_id in self.sensors:
                raise PropertyError(f"a stream with sensor id '{sensor_id}' already exists")
            names = {e.name for e in self.pipeline.elements}
            if not name:
                while f"stream-{self._n}" in names:
                    self._n += 1
                name = f"stream-{self._n}"
            elif name in names:
                raise PropertyError(f"the pipeline already has an element named '{name}'")
            src = make_element("urisrc", name, uri=uri, **{**self.defaults, **props})
            sid = self.pipeline.add_source(src, self.mux())
            src.sensor_id = sensor_id or str(sid)
            if sensor_id:
                self.sensors[sensor_id] = name
            return sid

    def find(self, key: int | str) -> "Element":
        """A running stream by source id (int or digits), sensor id or element name."""
        for el in self.sources():
            if str(el.stream_id()) == str(key) or getattr(el, "sensor_id", None) == key or el.name == key:
                return el
        raise PropertyError(f"no stream '{key}' (streams: {', '.join(self.describe_ids()) or 'none'})")

    def describe_ids(self) -> list[str]:
        return [f"{e.stream_id()} ({getattr(e, 'sensor_id', '') or e.name})" for e in self.sources()]

    def remove(self, key: int | str, timeout: float = 10.0) -> int:
        """Ends a stream (by source id, sensor id or name); returns its source id."""
        el = self.find(key)
        sid = el.stream_id()
        self.pipeline.remove_source(el, timeout)
        self.sensors = {k: v for k, v in self.sensors.items() if v != el.name}
        return sid

    def info(self) -> list[dict[str, Any]]:
        """One row per running stream: source_id, sensor_id, name, uri, frames, fps, drops, reconnects."""
        now = time.perf_counter()
        rows = []
        for el in self.sources():
            st = el.stats
            elapsed = max(1e-9, now - (getattr(el, "started_at", 0.0) or self.pipeline.start_time or now))
            rows.append({"source_id": el.stream_id(), "sensor_id": getattr(el, "sensor_id", "") or str(el.stream_id()),
                         "name": el.name, "uri": getattr(el, "path", ""), "frames": st.get("frames", 0),
                         "fps": round(st.get("frames", 0) / elapsed, 2), "dropped": getattr(el.src_pad.peer, "dropped", 0),
                         "reconnects": st.get("reconnects", 0), "decoder": getattr(el, "decoder", "")})
        return sorted(rows, key=lambda r: r["source_id"])
