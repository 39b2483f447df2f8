"""The one exchange type: Batch -> Frame -> FrameMeta -> ObjectMeta, plus display and user meta.

Pixels (`Frame.image`) are HxWx3 uint8 in **RGB** order: a numpy array on the CPU, or a torch
CUDA tensor on the GPU. Coordinates are in source-frame pixels unless the muxer scales.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

UNTRACKED_OBJECT_ID = -1
Color = tuple  # (r, g, b) or (r, g, b, a), 0-255


@dataclass(slots=True)
class BBox:
    """Axis-aligned box in pixels: left, top, width, height (DeepStream's rect_params)."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float) -> "BBox":
        return cls(float(x1), float(y1), float(x2) - float(x1), float(y2) - float(y1))

    def as_xyxy(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.left + self.width, self.top + self.height)

    def as_ltwh(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.width, self.height)

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def iou(self, other: "BBox") -> float:
        ix = max(0.0, min(self.right, other.right) - max(self.left, other.left))
        iy = max(0.0, min(self.bottom, other.bottom) - max(self.top, other.top))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(slots=True)
class Label:
    """One classifier result: class id, label text and probability."""

    class_id: int
    label: str
    prob: float


@dataclass(slots=True)
class Classification:
    """The output of one classifier (`component_id` = its gie-unique-id) on one object."""

    component_id: int
    labels: list[Label] = field(default_factory=list)

    @property
    def top(self) -> Label | None:
        return max(self.labels, key=lambda lab: lab.prob) if self.labels else None


@dataclass(slots=True, eq=False)
class ObjectMeta:
    """A detected object. `object_id` is -1 until a tracker assigns one."""

    class_id: int
    bbox: BBox
    confidence: float = 1.0
    label: str = ""
    object_id: int = UNTRACKED_OBJECT_ID
    tracker_confidence: float = 0.0
    track_age: int = 0  # frames since the tracker started this object's track
    component_id: int = 0
    parent: "ObjectMeta | None" = None
    classifications: list[Classification] = field(default_factory=list)
    user_meta: dict[str, Any] = field(default_factory=dict)
    color: Color | None = None  # overrides osd's per-class colour when set

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "class_id": self.class_id,
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "bbox": [round(v, 2) for v in self.bbox.as_ltwh()],
            "object_id": self.object_id,
        }
        if self.classifications:
            d["classifications"] = [
                {"component_id": c.component_id,
                 "labels": [{"class_id": lab.class_id, "label": lab.label,
                             "prob": round(float(lab.prob), 4)} for lab in c.labels]}
                for c in self.classifications]
        return d


# ---- display meta: what osd draws besides objects -------------------------------------------

@dataclass(slots=True)
class Rect:
    left: float
    top: float
    width: float
    height: float
    color: Color = (255, 0, 0)
    border_width: int = 2
    fill: Color | None = None


@dataclass(slots=True)
class Text:
    text: str
    x: float = 10
    y: float = 12
    font_scale: float = 0.5
    color: Color = (255, 255, 255)
    background: Color | None = (0, 0, 0)


@dataclass(slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    color: Color = (0, 255, 0)
    width: int = 2


@dataclass(slots=True)
class Circle:
    x: float
    y: float
    radius: float
    color: Color = (0, 0, 255)
    width: int = 2  # -1 fills


@dataclass(slots=True)
class Arrow:
    x1: float
    y1: float
    x2: float
    y2: float
    color: Color = (255, 255, 0)
    width: int = 2


@dataclass(slots=True)
class DisplayMeta:
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    circles: list[Circle] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rects or self.texts or self.lines or self.circles or self.arrows)


@dataclass(slots=True)
class TensorMeta:
    """Raw output tensors of one inference (output-tensor-meta=1), keyed by tensor name."""

    component_id: int
    tensors: dict[str, Any]
    network_size: tuple[int, int]  # (width, height) of the model input
    # maps model-input pixels back to frame pixels: x_frame = (x_net - pad_x) / scale_x
    scale: tuple[float, float] = (1.0, 1.0)
    pad: tuple[float, float] = (0.0, 0.0)


@dataclass(slots=True, eq=False)
class FrameMeta:
    objects: list[ObjectMeta] = field(default_factory=list)
    display_meta: DisplayMeta = field(default_factory=DisplayMeta)
    tensor_meta: list[TensorMeta] = field(default_factory=list)
    user_meta: dict[str, Any] = field(default_factory=dict)
    inferred_by: list[int] = field(default_factory=list)  # unique ids of primary detectors that ran


@dataclass(slots=True, eq=False)
class Frame:
    """One video frame of one stream. `image` is RGB uint8 HxWx3 (numpy or torch CUDA)."""

    image: Any
    source_id: int = 0
    frame_num: int = 0
    pts_seconds: float = 0.0
    meta: FrameMeta = field(default_factory=FrameMeta)
    source_uri: str = ""
    source_size: tuple[int, int] | None = None  # (width, height) before any muxer scaling
    created_at: float = field(default_factory=time.monotonic)  # when the source made it (latency)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def objects(self) -> list[ObjectMeta]:
        return self.meta.objects

    @property
    def display_meta(self) -> DisplayMeta:
        return self.meta.display_meta

    @property
    def user_meta(self) -> dict[str, Any]:
        return self.meta.user_meta

    @property
    def device(self) -> str:
        dev = getattr(self.image, "device", None)
        return str(dev) if dev is not None else "cpu"

    def to_numpy(self):
        """The pixels as a numpy array (copies from the GPU when they live there)."""
        img = self.image
        if hasattr(img, "detach"):
            if img.device.type != "cpu":
                from ..gpu import transfers
                transfers.d2h(img.numel() * img.element_size(), frame=True)
            return img.detach().cpu().numpy()
        return img

    def to_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "frame_num": self.frame_num,
                "pts": round(self.pts_seconds, 6),
                "objects": [o.to_dict() for o in self.meta.objects]}

    def __repr__(self) -> str:
        shape = tuple(getattr(self.image, "shape", ()))
        return (f"Frame(source_id={self.source_id}, frame_num={self.frame_num}, "
                f"pts_seconds={self.pts_seconds:.3f}, image={shape} on {self.device}, "
                f"objects={len(self.meta.objects)})")


@dataclass(slots=True, eq=False)
class EncodedPacket:
    """One compressed access unit (Annex-B for H.264/H.265) produced by an encoder."""

    source_id: int
    data: bytes
    pts: int
    dts: int
    time_base: Any  # fractions.Fraction
    keyframe: bool
    codec: str  # "h264" | "hevc"
    width: int
    height: int
    duration: int = 0  # in time_base units (one frame at the stream's rate)


@dataclass(slots=True, eq=False)
class Batch:
    """What flows between elements: frames of one or more streams, plus batch-level meta."""

    frames: list[Frame] = field(default_factory=list)
    user_meta: dict[str, Any] = field(default_factory=dict)
    encoded: list[EncodedPacket] | None = None

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"Batch({len(self.frames)} frames: " + ", ".join(
            f"{f.source_id}/{f.frame_num}" for f in self.frames) + ")"
