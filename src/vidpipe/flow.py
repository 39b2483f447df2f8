"""Flow: the compact way to build the common pipeline.

    Flow().capture("a.mp4", "b.mp4").infer(model="det.onnx").osd().encode("out_%d.mp4").run()

Each call adds an element; `build()` returns the Pipeline, `run()` builds and runs it.
"""
from __future__ import annotations

from typing import Any, Callable

from .core.element import Element
from .core.meta import Batch
from .core.pipeline import Pipeline
from .core.registry import make_element
from .errors import LinkError


class Flow:
    def __init__(self, *, batch_size: int | None = None, device: str = "cpu",
                 batched_push_timeout: int = -1):
        self.device = device
        self.batch_size = batch_size
        self.push_timeout = batched_push_timeout
        self.sources: list[Element] = []
        self.chain: list[Element] = []
        self._sinks = 0
        self.http = ""

    def capture(self, *uris: str, file_loop: bool = False, **props: Any) -> "Flow":
        for uri in uris:
            self.sources.append(make_element("urisrc", f"source{len(self.sources)}", uri=uri,
                                             file_loop=file_loop, device=self.device, **props))
        return self

    def add(self, factory: str | Element, name: str | None = None, **props: Any) -> "Flow":
        el = factory if isinstance(factory, Element) else make_element(factory, name, **props)
        self.chain.append(el)
        return self

    def infer(self, config: Any = None, *, name: str | None = None, **props: Any) -> "Flow":
        """config: a path (nvinfer INI or YAML) or an InferConfig."""
        if isinstance(config, str):
            props["config_file_path"] = config
        elif config is not None:
            props["config"] = config
        if self.device != "cpu":
            props.setdefault("device", self.device)
        return self.add("infer", name or f"infer{sum(e.factory_name == 'infer' for e in self.chain)}", **props)

    def track(self, tracker: str = "iou", **props: Any) -> "Flow":
        return self.add("tracker", "tracker", algorithm=tracker, **props)

    def analytics(self, config_file: str, **props: Any) -> "Flow":
        """ROIs, lines, directions, overcrowding from a config_nvdsanalytics.txt (after track())."""
        return self.add("analytics", "analytics", config_file=config_file, **props)

    def osd(self, **props: Any) -> "Flow":
        return self.add("osd", "osd", **props)

    def probe(self, callback: Callable[[Any, Batch], Any]) -> "Flow":
        """Probe on the src pad of the last element added so far."""
        if not self.chain:
            raise LinkError("add an element (infer, osd, ...) before a probe")
        self.chain[-1].src_pad.add_probe(callback)
        return self

    def jsonl(self, path: str) -> "Flow":
        return self.add("jsonsink", "metadata", location=path)

    def encode(self, out: str, **props: Any) -> "Flow":
        """Write to a file (.mp4/.mkv/... ; %d = stream id)."""
        enc = {k: props.pop(k) for k in list(props) if k in ("codec", "bitrate", "crf", "preset", "iframeinterval", "tune")}
        self.add("encoder", "encoder", **enc)
        return self.sink("filesink", location=out, **props)

    def sink(self, factory: str = "fakesink", **props: Any) -> "Flow":
        self._sinks += 1
        return self.add(factory, f"sink{self._sinks}" if self._sinks > 1 else "sink", **props)

    def build(self) -> Pipeline:
        if not self.sources:
            raise LinkError("no input: call capture(uri, ...) first")
        if not self.chain or not self.chain[-1].src_optional and self.chain[-1].src_pads:
            self.sink("fakesink")
        p = Pipeline()
        mux = make_element("streammux", "mux", batch_size=self.batch_size or len(self.sources),
                           batched_push_timeout=self.push_timeout)
        p.add(*self.sources, mux, *self.chain)
        for s in self.sources:
            s.link(mux)
        p.link(mux, *self.chain)
        p.serve_address = self.http
        return p

    def serve(self, address: str = "127.0.0.1:8080") -> "Flow":
        """The built pipeline gets the HTTP service (REST, /metrics, console) when run()."""
        self.http = address
        return self

    def run(self) -> Pipeline:
        p = self.build()
        if p.serve_address:
            p.serve(p.serve_address)
        return p.run()
