"""The one exchange type: a Batch of Frames whose objects are one columnar table
(`batch.objects`; `frame.objects` is the frame's rows, see core/objects.py), plus display,
tensor and user meta.

Pixels (`Frame.image`) are HxWx3 uint8 in **RGB** order: a numpy array on the CPU, or a torch
CUDA tensor on the GPU. Coordinates are in source-frame pixels unless the muxer scales.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .objects import UNTRACKED_OBJECT_ID, ObjectMeta, ObjectSet, ObjectTable

__all__ = ["UNTRACKED_OBJECT_ID", "ObjectMeta", "ObjectSet", "ObjectTable", "BBox", "Label", "Classification",
           "Rect", "Text", "Line", "Circle", "Arrow", "DisplayMeta", "TensorMeta", "FrameMeta", "Frame",
           "EncodedPacket", "Batch"]
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
    """A frame's metadata besides its objects (those live in the batch's table: frame.objects)."""

    display_meta: DisplayMeta = field(default_factory=DisplayMeta)
    tensor_meta: list[TensorMeta] = field(default_factory=list)
    user_meta: dict[str, Any] = field(default_factory=dict)
    inferred_by: list[int] = field(default_factory=list)  # unique ids of primary detectors that ran
    # a weak reference: a strong one would make every frame a reference cycle, freed only by the
    # cyclic GC, so decoded pictures piled up (measured: 2.4x the page faults, 1.6 GB vs 0.7 GB)
    _frame: Any = field(default=None, repr=False)

    @property
    def frame(self) -> "Frame | None":
        return self._frame() if self._frame is not None else None

    @property
    def objects(self) -> ObjectSet:
        """Same as frame.objects (kept for code written against DeepStream's frame_meta)."""
        frame = self.frame
        if frame is None:
            raise AttributeError("this FrameMeta is not attached to a frame; use frame.objects")
        return frame.objects

    @objects.setter
    def objects(self, objs: Any) -> None:
        frame = self.frame
        if frame is None:
            raise AttributeError("this FrameMeta is not attached to a frame; use frame.objects")
        frame.objects = objs


class Frame:
    """One video frame of one stream. `image` is RGB uint8 HxWx3 (numpy, or a torch CUDA tensor).

    Frames decoded on the GPU arrive as NV12 (`frame.nv12`, [H*3/2, W] uint8 on the device): the
    RGB image is made the first time something asks for `frame.image` (osd, tiler, encoder, a
    probe), and the infer element makes its model input from the NV12 batch without it."""

    __slots__ = ("_image", "nv12", "source_id", "frame_num", "pts_seconds", "meta", "source_uri",
                 "source_size", "created_at", "_table", "_slot", "__weakref__")

    def __init__(self, image: Any = None, source_id: int = 0, frame_num: int = 0, pts_seconds: float = 0.0,
                 meta: FrameMeta | None = None, source_uri: str = "", source_size: tuple[int, int] | None = None,
                 created_at: float | None = None, *, nv12: Any = None):
        if image is None and nv12 is None:
            raise ValueError("a Frame needs an image (RGB HxWx3) or nv12 pixels")
        self._image = image
        self.nv12 = nv12
        self.source_id = source_id
        self.frame_num = frame_num
        self.pts_seconds = pts_seconds
        self.meta = meta if meta is not None else FrameMeta()
        self.source_uri = source_uri
        self.source_size = source_size  # (width, height) before any muxer scaling
        self.created_at = time.monotonic() if created_at is None else created_at  # when the source made it
        self._table: ObjectTable | None = None  # the batch's object table
        self._slot = 0                          # this frame's index in it
        self.meta._frame = weakref.ref(self)

    def __deepcopy__(self, memo: dict) -> "Frame":
        import copy
        new = Frame.__new__(Frame)
        memo[id(self)] = new
        for k in Frame.__slots__[:-1]:  # all but __weakref__
            setattr(new, k, copy.deepcopy(getattr(self, k), memo))
        new.meta._frame = weakref.ref(new)
        return new

    @property
    def image(self) -> Any:
        img = self._image
        if img is None:  # NV12 from the decoder: RGB made once, when first asked for
            from .tensors import nv12_to_rgb
            img = self._image = nv12_to_rgb(self.nv12)
        return img

    @image.setter
    def image(self, img: Any) -> None:
        self._image = img
        self.nv12 = None  # new pixels: the NV12 copy no longer matches

    def set_rgb_from_nv12(self, img: Any) -> None:
        """The RGB image made from this frame's NV12 elsewhere (a batch conversion): the NV12 copy
        still matches it, unlike after setting `image`."""
        self._image = img

    @property
    def has_rgb(self) -> bool:
        """Whether the RGB image exists already (False: only NV12, converted on first use)."""
        return self._image is not None

    @property
    def width(self) -> int:
        if self._image is None:
            return int(self.nv12.shape[1])
        return int(self._image.shape[1])

    @property
    def height(self) -> int:
        if self._image is None:
            return int(self.nv12.shape[0]) * 2 // 3
        return int(self._image.shape[0])

    @property
    def objects(self) -> ObjectSet:
        """This frame's objects: iterate for ObjectMeta views, or read columns (`.xyxy`,
        `.class_id`, ...); `append`/`add`/`remove` change the batch's table."""
        t = self._table
        if t is None:
            t = self._table = ObjectTable()
            self._slot = 0
        return ObjectSet(t, t.rows_of(self._slot), self._slot)

    @objects.setter
    def objects(self, objs: Any) -> None:
        """`frame.objects = [...]` replaces the frame's objects (`+=` adds)."""
        if isinstance(objs, ObjectSet) and objs._t is self._table and objs._slot == self._slot:
            return  # `frame.objects += ...` already added them
        self.objects[:] = list(objs)

    @property
    def display_meta(self) -> DisplayMeta:
        return self.meta.display_meta

    @property
    def user_meta(self) -> dict[str, Any]:
        return self.meta.user_meta

    @property
    def device(self) -> str:
        dev = getattr(self._image if self._image is not None else self.nv12, "device", None)
        return str(dev) if dev is not None else "cpu"

    def to_numpy(self):
        """The pixels as a numpy array (copies from the GPU when they live there)."""
        img = self.image
        if hasattr(img, "detach"):
            if img.device.type != "cpu":
                from .tensors import transfers
                transfers.d2h(img.numel() * img.element_size(), frame=True)
            return img.detach().cpu().numpy()
        return img

    def to_dict(self) -> dict[str, Any]:
        d = {"source_id": self.source_id, "frame_num": self.frame_num,
             "pts": round(self.pts_seconds, 6), "objects": self.objects.to_dicts()}
        for key, value in self.meta.user_meta.items():  # results that know their JSON form (analytics)
            if hasattr(value, "to_dict"):
                d[key] = value.to_dict()
        return d

    def __repr__(self) -> str:
        shape = (self.height, self.width, 3) if self._image is not None or self.nv12 is not None else ()
        return (f"Frame(source_id={self.source_id}, frame_num={self.frame_num}, "
                f"pts_seconds={self.pts_seconds:.3f}, image={shape} on {self.device}"
                f"{'' if self.has_rgb else ' (NV12)'}, "
                f"objects={len(self.objects)})")


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
    """What flows between elements: frames of one or more streams, their objects as one table
    (`batch.objects`), plus batch-level meta. Making a Batch gathers the frames' objects from
    wherever they were into its own table."""

    frames: list[Frame] = field(default_factory=list)
    user_meta: dict[str, Any] = field(default_factory=dict)
    encoded: list[EncodedPacket] | None = None
    table: ObjectTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = []
        for i, f in enumerate(self.frames):
            t = f._table
            if t is not None and t.n - t.dead > 0:
                rows = t.rows_of(f._slot)
                if len(rows):
                    parts.append((t, rows, i))
        self.table = ObjectTable.concat(parts) if parts else ObjectTable()
        for i, f in enumerate(self.frames):
            f._table, f._slot = self.table, i

    @property
    def objects(self) -> ObjectSet:
        """Every object of the batch (`.frame` says whose): columns for vectorised work."""
        return ObjectSet(self.table, None)

    def compact(self) -> None:
        """Drops rows removed since the last compaction (the pads do this as the batch leaves)."""
        t = self.table
        if not t.dead:
            return
        keep = np.nonzero(t.cols["frame"][:t.n] >= 0)[0]
        self.table = t.take(keep)
        for f in self.frames:
            f._table = self.table

    def rounds(self) -> list[list[int]]:
        """Frame indexes in rounds of distinct streams, in order: a stream with two frames in
        this batch has its first in round 0, its second in round 1. Stateful per-stream work
        (tracking, analytics) goes round by round."""
        frames = self.frames
        if len({f.source_id for f in frames}) == len(frames):  # distinct streams (the usual batch)
            return [list(range(len(frames)))] if frames else []
        rounds: list[list[int]] = []
        seen: dict[int, int] = {}
        for i, f in enumerate(frames):
            r = seen.get(f.source_id, 0)
            seen[f.source_id] = r + 1
            if r == len(rounds):
                rounds.append([])
            rounds[r].append(i)
        return rounds

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"Batch({len(self.frames)} frames: " + ", ".join(
            f"{f.source_id}/{f.frame_num}" for f in self.frames) + ")"
