"""smartrecord: smart record of the annotated video (what the osd drew), re-encoded.

Put it after an encoder: it caches each stream's encoded packets (batch.encoded) and cuts clips
from them with the same start / duration semantics as a source's smart record:

    ... ! osd ! encoder ! smartrecord dir-path=clips ! fakesink
    pipeline.smart_record.start(source_id, annotated=True)

The clock is the encoded packets' (an encoder with lookahead delivers a frame's packet a few
frames after the frame), so t is the time of the last packet encoded for that stream.
"""
from __future__ import annotations

import io
import threading
from typing import Any

from ..core.element import Element
from ..core.meta import Batch
from ..core.props import Prop
from ..core.registry import register
from ..errors import MediaError
from ..media.record import Recorder


@register("smartrecord", aliases={"nvsmartrecord": {}})
class SmartRecordSink(Element):
    """Per stream, a cache of the encoder's packets and clips cut from it (see docs/smart-record.md).
    Batches pass on unchanged (the src pad may stay unlinked)."""

    description = "smart record of the encoded (annotated) video"
    src_optional = True
    cache = Prop(float, 20.0, "seconds of encoded packets kept per stream", minimum=0.5)
    container = Prop(int, 0, "clip container: 0 mp4, 1 mkv", choices=[0, 1])
    file_prefix = Prop(str, "Smart_Record_osd", "clip file names: PREFIX_STREAM_N_DATE-TIME.mp4")
    dir_path = Prop(str, ".", "folder for the clips (made when missing)")
    default_duration = Prop(float, 10.0, "seconds after the trigger when start() gives none", minimum=0.0)
    start_time = Prop(float, 2.0, "seconds before the trigger when start() gives none", minimum=0.0)

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self.recorders: dict[int, Recorder] = {}
        self._templates: dict[int, Any] = {}
        self._lock = threading.RLock()  # reentrant: a recording-done callback may start the next clip

    def recorder_for(self, source_id: int) -> Recorder:
        with self._lock:
            rec = self.recorders.get(source_id)
            if rec is None:
                rec = self.recorders[source_id] = Recorder(
                    source_id, cache_s=self.cache, folder=self.dir_path, prefix=self.file_prefix,
                    container=self.container, default_duration=self.default_duration, on_done=self._done)
            return rec

    def _template(self, pkt: Any) -> Any:
        """The stream parameters of an encoded stream, read from its first keyframe's Annex-B."""
        import av
        t = self._templates.get(pkt.source_id)
        if t is None:
            c = av.open(io.BytesIO(pkt.data), format="h264" if pkt.codec == "h264" else "hevc")
            t = self._templates[pkt.source_id] = (c, c.streams.video[0])
        return t[1]

    def process(self, batch: Batch) -> Batch:
        import av
        latest: dict[int, float] = {}
        for pkt in batch.encoded or []:
            rec = self.recorder_for(pkt.source_id)
            if pkt.source_id not in self._templates and not pkt.keyframe:
                continue  # the cache starts at a keyframe anyway
            stream = self._template(pkt)
            p = av.Packet(pkt.data)
            p.pts, p.dts, p.time_base, p.is_keyframe = pkt.pts, pkt.dts, pkt.time_base, pkt.keyframe
            with self._lock:
                rec.time_base = pkt.time_base
                rec.push(p, stream)
            latest[pkt.source_id] = max(latest.get(pkt.source_id, 0.0), float((pkt.dts if pkt.dts is not None
                                                                             else pkt.pts) * pkt.time_base))
        for sid, t in latest.items():
            with self._lock:
                self.recorders[sid].frame(t)
        return batch

    def start_recording(self, source_id: int, start_before: float | None = None,
                        duration: float | None = None) -> str:
        rec = self.recorders.get(source_id)
        if rec is None or rec.template is None:
            raise MediaError(f"{self.name}: nothing encoded yet for stream {source_id}")
        with self._lock:
            return rec.start(self.start_time if start_before is None else start_before, duration)

    def stop_recording(self, source_id: int):
        rec = self.recorders.get(source_id)
        if rec is None:
            return None
        with self._lock:
            return rec.stop()

    def _done(self, info) -> None:
        self.post("recording-done", f"stream {info.source_id}: annotated clip {info.path} ({info.duration:.2f} s)",
                  source_id=info.source_id, path=info.path, first_pts=info.first_pts, last_pts=info.last_pts,
                  duration=info.duration, error=info.error, annotated=True)
        if self.pipeline is not None:
            self.pipeline.smart_record._done(info)

    def finish(self):
        with self._lock:
            for rec in self.recorders.values():
                rec.finish(upto=float("inf"))
        return []

    def stop(self) -> None:
        with self._lock:
            for rec in self.recorders.values():
                rec.finish(upto=float("inf"))
            for c, _ in self._templates.values():
                c.close()
            self._templates.clear()
