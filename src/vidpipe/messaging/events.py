"""Event metadata (DeepStream's NvDsEventMsgMeta): what a probe attaches to a frame for msgconv to
turn into a message payload.

    from vidpipe.messaging import attach_event
    attach_event(frame, obj, type="entry", vehicle={"type": "sedan", "color": "blue"})
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("entry", "exit", "moving", "stopped", "empty", "parked", "reset", "custom")
OBJECT_TYPES = ("vehicle", "person", "face", "bag", "bicycle", "roadsign", "unknown")
VEHICLE_FIELDS = ("type", "make", "model", "color", "license", "region")
PERSON_FIELDS = ("age", "gender", "hair", "cap", "apparel")


@dataclass
class EventMsgMeta:
    """One event. `bbox` is (left, top, width, height) in frame pixels."""
    type: str = "moving"
    object_type: str = "unknown"
    object_id: int = -1                 # tracking id (-1: untracked)
    class_id: int = -1
    label: str = ""
    confidence: float = 0.0
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    sensor_id: int = 0                  # [sensorN] of the msgconv config
    place_id: int = 0                   # [placeN]
    module_id: int = 0                  # [analyticsN]
    sensor_str: str = ""                # overrides the sensor id string
    timestamp: str = ""                 # ISO 8601 UTC; empty: the frame's time
    frame_num: int = 0
    source_id: int = 0
    vehicle: dict[str, Any] | None = None
    person: dict[str, Any] | None = None
    face: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)   # free fields, copied into the payload

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"event type must be one of {', '.join(EVENT_TYPES)}, got {self.type!r}")
        if self.object_type not in OBJECT_TYPES:
            raise ValueError(f"object type must be one of {', '.join(OBJECT_TYPES)}, got {self.object_type!r}")


def object_type_of(label: str | None) -> str:
    """The schema's object type for a detector label (COCO names)."""
    lab = (label or "").lower()
    return "person" if lab == "person" else "vehicle" if lab in ("car", "truck", "bus", "motorcycle", "vehicle") \
        else "bicycle" if lab == "bicycle" else "unknown"


def iso_time(epoch_s: float) -> str:
    """2026-11-25T23:40:00.123Z (DeepStream's @timestamp form)."""
    t = _dt.datetime.fromtimestamp(epoch_s, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def attach_event(frame: Any, obj: Any = None, **fields: Any) -> EventMsgMeta:
    """Attaches an event to `frame` (frame.meta.user_meta["events"]); with `obj` (an object of
    the frame) its id, class, label, confidence and box fill the event's object fields."""
    if obj is not None:
        b = obj.bbox
        fields.setdefault("object_id", int(obj.object_id))
        fields.setdefault("class_id", int(obj.class_id))
        fields.setdefault("label", obj.label)
        fields.setdefault("confidence", float(obj.confidence))
        fields.setdefault("bbox", (b.left, b.top, b.width, b.height))
        if "object_type" not in fields:
            fields["object_type"] = object_type_of(obj.label)
    fields.setdefault("frame_num", int(frame.frame_num))
    fields.setdefault("source_id", int(frame.source_id))
    ev = EventMsgMeta(**fields)
    frame.meta.user_meta.setdefault("events", []).append(ev)
    return ev
