"""The pipeline the messaging and service suites measure: N sources -> streammux -> infer (the
default detector) -> [extra elements] -> fakesink, counting objects per frame at the sink."""
from __future__ import annotations

import time
from typing import Any


def detect_pipeline(uris: list[str], *, frames: int = -1, live: bool = False, extra: tuple[Any, ...] = ()):
    """(pipeline, [(source id, frame number, objects)], [time of the last frame at the sink])."""
    from .. import assets, make_element
    from ..core.pipeline import Pipeline
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=len(uris), batched_push_timeout=40000, live_source=live)
    for i, u in enumerate(uris):
        s = make_element("urisrc", f"s{i}", uri=u, num_buffers=frames, live=live, file_loop=live)
        p.add(s)
        s.link(mux)
    p.link(mux, make_element("infer", "infer", config=assets.default_infer_config()), *extra,
           make_element("fakesink", "sink"))
    counts: list[tuple[int, int, int]] = []
    last = [0.0]

    def probe(pad, b):
        counts.extend((f.source_id, f.frame_num, len(f.objects)) for f in b.frames)
        last[0] = time.perf_counter()
    p["sink"].sink_pad.add_probe(probe)
    return p, counts, last
