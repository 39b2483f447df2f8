"""msgconv: events on frames -> JSON payloads (nvmsgconv's role), DeepStream's two schemas.

payload-type 0 (full, DeepStream's schema): one payload per event
    {"messageid", "mdsversion": "1.0", "@timestamp", "place": {...}, "sensor": {...},
     "analyticsModule": {...}, "object": {"id", "speed", "direction", "orientation",
     "<vehicle|person|face|...>": {...}, "bbox": {"topleftx", "toplefty", "bottomrightx",
     "bottomrighty"}, "location", "coordinate"}, "event": {"id", "type"}, "videoPath": ""}
payload-type 1 (minimal, version 4.0): one payload per frame with all its events
    {"version": "4.0", "id": "<frame number>", "@timestamp", "sensorId",
     "objects": ["<id>|<left>|<top>|<right>|<bottom>|<label>[|<attributes>...]"]}

The sensor, place and analytics module come from a config in DeepStream's msgconv format
([sensorN], [placeN], [analyticsN] with their keys) or YAML with the same groups.
"""
from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config.ini import read_groups
from ..core.element import Element
from ..core.meta import Batch
from ..core.props import Prop
from ..core.registry import register
from ..errors import ConfigError
from .events import PERSON_FIELDS, VEHICLE_FIELDS, EventMsgMeta, iso_time

_GROUP = re.compile(r"^(sensor|place|analytics)(\d+)$")
_KEYS = {"sensor": {"enable", "type", "id", "location", "description", "coordinate"},
         "place": {"enable", "id", "type", "name", "location", "coordinate", "place-sub-field1", "place-sub-field2",
                   "place-sub-field3"},
         "analytics": {"enable", "id", "description", "source", "version"}}


@dataclass
class Payload:
    """A message ready for a broker: `id` is stable (the outbox de-duplicates and consumers can)."""
    id: str
    data: str
    source_id: int = 0
    topic: str = ""


@dataclass
class MsgConvConfig:
    sensors: dict[int, dict[str, str]] = field(default_factory=dict)
    places: dict[int, dict[str, str]] = field(default_factory=dict)
    analytics: dict[int, dict[str, str]] = field(default_factory=dict)


def load_msgconv_config(path: str) -> MsgConvConfig:
    entries = read_groups(path, "msgconv config")
    cfg = MsgConvConfig()
    for e in entries:
        m = _GROUP.match(e.section)
        if m is None:
            raise ConfigError(f"unknown group [{e.section}] (expected [sensorN], [placeN], [analyticsN])", file=path,
                              line=e.section_line or e.line)
        kind, n = m.group(1), int(m.group(2))
        if e.key not in _KEYS[kind]:
            raise ConfigError(f"unknown key in [{e.section}] (known: {', '.join(sorted(_KEYS[kind]))})", file=path,
                              line=e.line, key=e.raw_key or e.key)
        if e.key in ("location", "coordinate"):
            parts = [p for p in e.value.split(";") if p.strip()]
            try:
                [float(p) for p in parts]
            except ValueError:
                raise ConfigError(f"expected numbers separated by ';', got {e.value!r}", file=path, line=e.line,
                                  key=e.raw_key) from None
            if len(parts) != 3:
                raise ConfigError(f"expected 3 numbers, got {len(parts)}", file=path, line=e.line, key=e.raw_key)
        group = {"sensor": cfg.sensors, "place": cfg.places, "analytics": cfg.analytics}[kind]
        group.setdefault(n, {})[e.key] = e.value
    for group in (cfg.sensors, cfg.places, cfg.analytics):
        for n in [k for k, v in group.items() if v.get("enable", "1").strip() == "0"]:
            del group[n]
    return cfg


def _triple(value: str | None, names: tuple[str, str, str]) -> dict[str, float]:
    vals = [float(p) for p in (value or "0;0;0").split(";") if p.strip()]
    return dict(zip(names, vals))


def _place_block(kind: str) -> str:
    k = kind.lower()
    if "parking" in k:
        return "parkingSpot"
    if "aisle" in k or "store" in k:
        return "aisle"
    return "entrance"


class PayloadMaker:
    """The schema code, usable without a pipeline (tests, other sinks)."""

    def __init__(self, cfg: MsgConvConfig | None = None):
        self.cfg = cfg or MsgConvConfig()
        self._cache: dict[tuple, str] = {}

    def sensor_id(self, ev: EventMsgMeta) -> str:
        return ev.sensor_str or self.cfg.sensors.get(ev.sensor_id, {}).get("id", str(ev.sensor_id))

    @staticmethod
    def _object(ev: EventMsgMeta) -> dict[str, Any]:
        left, top, w, h = ev.bbox
        obj: dict[str, Any] = {"id": str(ev.object_id), "speed": 0.0, "direction": 0.0, "orientation": 0.0}
        conf = round(float(ev.confidence), 4)
        if ev.object_type == "vehicle":
            obj["vehicle"] = {k: (ev.vehicle or {}).get(k, "") for k in VEHICLE_FIELDS} | {"confidence": conf}
        elif ev.object_type == "person":
            obj["person"] = {k: (ev.person or {}).get(k, 0 if k == "age" else "") for k in PERSON_FIELDS} | \
                {"confidence": conf}
        elif ev.object_type == "face":
            obj["face"] = dict(ev.face or {}) | {"confidence": conf}
        else:
            obj[ev.object_type] = {"label": ev.label, "confidence": conf}
        obj["bbox"] = {"topleftx": round(left), "toplefty": round(top), "bottomrightx": round(left + w),
                       "bottomrighty": round(top + h)}
        obj["location"] = {"lat": 0.0, "lon": 0.0, "alt": 0.0}
        obj["coordinate"] = {"x": 0.0, "y": 0.0, "z": 0.0}
        return obj

    def _blocks(self, ev: EventMsgMeta) -> dict[str, Any]:
        """place, sensor and analyticsModule: the same for every event of a sensor."""
        s = self.cfg.sensors.get(ev.sensor_id, {})
        p = self.cfg.places.get(ev.place_id, {})
        a = self.cfg.analytics.get(ev.module_id, {})
        return {
            "place": {"id": p.get("id", str(ev.place_id)), "name": p.get("name", ""), "type": p.get("type", ""),
                      "location": _triple(p.get("location"), ("lat", "lon", "alt")),
                      _place_block(p.get("type", "")): {"name": p.get("place-sub-field1", ""),
                                                        "lane": p.get("place-sub-field2", ""),
                                                        "level": p.get("place-sub-field3", ""),
                                                        "coordinate": _triple(p.get("coordinate"), ("x", "y", "z"))}},
            "sensor": {"id": self.sensor_id(ev), "type": s.get("type", ""), "description": s.get("description", ""),
                       "location": _triple(s.get("location"), ("lat", "lon", "alt")),
                       "coordinate": _triple(s.get("coordinate"), ("x", "y", "z"))},
            "analyticsModule": {"id": a.get("id", str(ev.module_id)), "description": a.get("description", ""),
                                "source": a.get("source", ""), "version": a.get("version", "")}}

    def full(self, ev: EventMsgMeta, timestamp: str) -> dict[str, Any]:
        msg: dict[str, Any] = {"messageid": str(uuid.uuid4()), "mdsversion": "1.0", "@timestamp": timestamp,
                               **self._blocks(ev), "object": self._object(ev),
                               "event": {"id": str(uuid.uuid4()), "type": ev.type}, "videoPath": ""}
        msg.update(ev.extra)
        return msg

    def full_json(self, ev: EventMsgMeta, timestamp: str) -> tuple[str, str]:
        """(messageid, json.dumps(full(ev)) compact): the same text, with the blocks that only
        depend on the sensor serialised once per sensor."""
        if ev.extra:
            msg = self.full(ev, timestamp)
            return msg["messageid"], json.dumps(msg, separators=(",", ":"))
        key = (ev.sensor_id, ev.sensor_str, ev.place_id, ev.module_id)
        blocks = self._cache.get(key)
        if blocks is None:
            blocks = self._cache[key] = json.dumps(self._blocks(ev), separators=(",", ":"))[1:-1]
        mid = str(uuid.uuid4())
        return mid, (f'{{"messageid":"{mid}","mdsversion":"1.0","@timestamp":{json.dumps(timestamp)},{blocks},'
                     f'"object":{self._object_json(ev)},"event":{{"id":"{uuid.uuid4()}",'
                     f'"type":"{ev.type}"}},"videoPath":""}}')

    _EMPTY = {"person": '"person":{' + ",".join(f'"{k}":' + ('0' if k == "age" else '""') for k in PERSON_FIELDS),
              "vehicle": '"vehicle":{' + ",".join(f'"{k}":""' for k in VEHICLE_FIELDS), "face": '"face":{'}

    def _object_json(self, ev: EventMsgMeta) -> str:
        """json.dumps(_object(ev)) for the common case (no person/vehicle/face fields given),
        written directly; anything else through json."""
        conf = round(float(ev.confidence), 4)
        extra = ev.vehicle if ev.object_type == "vehicle" else ev.person if ev.object_type == "person" else \
            ev.face if ev.object_type == "face" else None
        if extra or not math.isfinite(conf) or not all(math.isfinite(v) for v in ev.bbox):
            return json.dumps(self._object(ev), separators=(",", ":"))
        head = self._EMPTY.get(ev.object_type)
        if head is None:
            kind = f'{json.dumps(ev.object_type)}:{{"label":{json.dumps(ev.label)},"confidence":{conf!r}}}'
        else:
            kind = f'{head}{"," if head[-1] != "{" else ""}"confidence":{conf!r}}}'
        left, top, w, h = ev.bbox
        return (f'{{"id":{json.dumps(str(ev.object_id))},"speed":0.0,"direction":0.0,"orientation":0.0,{kind},'
                f'"bbox":{{"topleftx":{round(left)},"toplefty":{round(top)},"bottomrightx":{round(left + w)},'
                f'"bottomrighty":{round(top + h)}}},"location":{{"lat":0.0,"lon":0.0,"alt":0.0}},'
                f'"coordinate":{{"x":0.0,"y":0.0,"z":0.0}}}}')

    @staticmethod
    def minimal_object(ev: EventMsgMeta) -> str:
        left, top, w, h = ev.bbox
        parts = [str(ev.object_id), f"{left:.0f}", f"{top:.0f}", f"{left + w:.0f}", f"{top + h:.0f}",
                 ev.label or ev.object_type]
        if ev.object_type == "vehicle" and ev.vehicle:
            parts += [str(ev.vehicle.get(k, "")) for k in VEHICLE_FIELDS]
        elif ev.object_type == "person" and ev.person:
            parts += [str(ev.person.get(k, "")) for k in PERSON_FIELDS]
        return "|".join(parts)

    def minimal(self, events: list[EventMsgMeta], frame_num: int, timestamp: str) -> dict[str, Any]:
        return {"version": "4.0", "id": str(frame_num), "@timestamp": timestamp,
                "sensorId": self.sensor_id(events[0]), "objects": [self.minimal_object(e) for e in events]}


@register("msgconv", aliases={"nvmsgconv": {}})
class MsgConv(Element):
    """Turns the events on each frame (frame.meta.user_meta["events"], see
    vidpipe.messaging.attach_event) into JSON payloads for msgbroker (batch.user_meta["payloads"])."""

    description = "event metadata -> JSON payloads (DeepStream full / minimal schema)"
    config = Prop(str, "", "msgconv config: [sensorN], [placeN], [analyticsN] (DeepStream's format) or YAML")
    payload_type = Prop(int, 0, "0 full DeepStream schema (one payload per event), 1 minimal (one per frame)",
                        choices=[0, 1])
    multiple_payloads = Prop(bool, False, "minimal schema: one payload per event instead of per frame")
    frame_interval = Prop(int, 0, "frames with no events from probes: every Nth frame, an event per object "
                          "(0: only probes' events)", minimum=0)
    comp_id = Prop(int, 0, "only events of objects from this component (gie-unique-id); 0: all", minimum=0)
    payload_func = Prop(object, None, "your function(events, frame) -> str or list[str] (replaces the schemas)",
                        nullable=True)

    def start(self) -> None:
        self.maker = PayloadMaker(load_msgconv_config(self.config) if self.config else None)
        self.generated = 0  # payloads this element made

    def _auto_events(self, frame: Any) -> list[EventMsgMeta]:
        from .events import EventMsgMeta, object_type_of
        if not self.frame_interval or frame.frame_num % self.frame_interval:
            return []
        objs = frame.objects
        if self.comp_id:
            objs = objs[objs.component_id == self.comp_id]
        if not len(objs):
            return []
        ltwh = objs.ltwh.tolist()          # from the columns: no object views
        events = [EventMsgMeta("moving", object_type_of(lab), int(oid), int(cid), lab or "", float(conf),
                               tuple(box), frame_num=int(frame.frame_num), source_id=int(frame.source_id))
                  for lab, oid, cid, conf, box in zip(objs.labels, objs.object_id.tolist(), objs.class_id.tolist(),
                                                      objs.confidence.tolist(), ltwh)]
        frame.meta.user_meta.setdefault("events", []).extend(events)
        return events

    def process(self, batch: Batch) -> Batch:
        out: list[Payload] = batch.user_meta.setdefault("payloads", [])
        before = len(out)
        func: Callable | None = self.payload_func
        for f in batch.frames:
            events = f.meta.user_meta.get("events") or self._auto_events(f)
            if not events:
                continue
            stamp = time.time()
            ts = [e.timestamp or iso_time(stamp) for e in events]
            if func is not None:
                got = func(events, f)
                for data in [got] if isinstance(got, str) else list(got or []):
                    out.append(Payload(str(uuid.uuid4()), data, f.source_id))
            elif self.payload_type == 0:
                for e, t in zip(events, ts):
                    mid, text = self.maker.full_json(e, t)
                    out.append(Payload(mid, text, f.source_id))
            elif self.multiple_payloads:
                for e, t in zip(events, ts):
                    out.append(Payload(str(uuid.uuid4()), json.dumps(self.maker.minimal([e], f.frame_num, t),
                                                                     separators=(",", ":")), f.source_id))
            else:
                out.append(Payload(str(uuid.uuid4()), json.dumps(self.maker.minimal(events, f.frame_num, ts[0]),
                                                                 separators=(",", ":")), f.source_id))
        self.generated += len(out) - before
        return batch
