"""Objects as columns: one table per batch, light views for probes.

A batch's objects live in one `ObjectTable`: parallel arrays (frame index, xyxy, confidence,
class id, object id, tracker confidence, track age, component id, parent row) plus object
columns (label, classifications, user meta, colour) and any extra named columns. Elements work on
the columns; `frame.objects` is an `ObjectSet` (the frame's rows) and iterating it yields
`ObjectMeta` views whose attribute reads and writes go to the table, so a probe can still write
`for o in frame.objects: o.label` and `o.confidence = 0.9`.

Rows removed in a probe or element are only marked; the batch is compacted when it leaves through
a pad, so views stay valid while the batch is in your hands.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

UNTRACKED_OBJECT_ID = -1
_new = object.__new__  # views are made without __init__ (their slots are set by the maker)

# numeric columns: name -> (dtype, trailing shape, default)
NUMERIC: dict[str, tuple[Any, tuple[int, ...], Any]] = {
    "frame": (np.int32, (), -1),
    "xyxy": (np.float32, (4,), 0.0),
    "confidence": (np.float32, (), 1.0),
    "class_id": (np.int32, (), 0),
    "object_id": (np.int64, (), UNTRACKED_OBJECT_ID),
    "tracker_confidence": (np.float32, (), 0.0),
    "track_age": (np.int32, (), 0),
    "component_id": (np.int32, (), 0),
    "parent": (np.int32, (), -1),
}
# Python-object columns (None = empty): label str, classifications list, user_meta dict, color tuple
OBJECT = ("label", "classifications", "user_meta", "color")
COLUMNS = (*NUMERIC, *OBJECT)


_templates: dict[tuple[str, int], np.ndarray] = {}


def _round_up(n: int) -> int:
    """Capacities are powers of two (at least 8), so few column templates serve every table."""
    return max(8, 1 << (max(n, 1) - 1).bit_length())


def _empty(name: str, cap: int, dtype: Any = None) -> np.ndarray:
    """A column of `cap` default values (built-in columns: copied from a cached template, which
    is several times cheaper than np.full for the small tables of a batch)."""
    if dtype is None and cap <= 4096:
        t = _templates.get((name, cap))
        if t is None:
            t = _templates[(name, cap)] = _fill(name, cap, None)
        return t.copy()
    return _fill(name, cap, dtype)


def _fill(name: str, cap: int, dtype: Any) -> np.ndarray:
    if name in NUMERIC:
        dt, tail, default = NUMERIC[name]
        return np.full((cap, *tail), default, dt)
    if dtype is not None:  # an extra column
        dt = np.dtype(dtype)
        fill = np.nan if dt.kind == "f" else (None if dt.kind == "O" else 0)
        return np.full(cap, fill, dt)
    return np.full(cap, None, object)


class ObjectTable:
    """Storage for the objects of one batch (or of one detached object). Columns are arrays with
    spare capacity; `n` rows are in use. Use `ObjectSet` (batch.objects, frame.objects) rather
    than this class directly."""

    __slots__ = ("cols", "extra", "n", "dead", "_version", "_index")
    _index: "tuple[int, np.ndarray, list[int]] | None"

    _EMPTY = {k: _empty(k, 0) for k in COLUMNS}  # zero-length: never written, replaced on growth

    def __init__(self, capacity: int = 0):
        cap = _round_up(int(capacity)) if capacity > 0 else 0
        self.cols: dict[str, np.ndarray] = dict(self._EMPTY) if cap == 0 else {k: _empty(k, cap) for k in COLUMNS}
        self.extra: dict[str, np.ndarray] = {}
        self.n = 0
        self.dead = 0          # rows marked removed (frame == -1), dropped at the next compaction
        self._version = 0
        self._index: tuple[int, np.ndarray, np.ndarray] | None = None

    # -- storage -----------------------------------------------------------------------------
    def col(self, name: str) -> np.ndarray:
        """The rows in use of a column (a view: writes land in the table)."""
        a = self.cols.get(name)
        if a is None:
            a = self.extra.get(name)
            if a is None:
                raise KeyError(f"no object column '{name}'; built-in: {', '.join(COLUMNS)}; "
                               f"extra: {', '.join(self.extra) or '(none)'}")
        return a[:self.n]

    def _reserve(self, k: int) -> None:
        need = self.n + k
        cap = len(self.cols["frame"])
        if need <= cap:
            return
        new_cap = _round_up(max(need, 2 * cap))
        for group in (self.cols, self.extra):
            for name, a in group.items():
                b = _empty(name, new_cap, a.dtype if group is self.extra else None)
                b[:self.n] = a[:self.n]
                group[name] = b

    def add_column(self, name: str, dtype: Any) -> np.ndarray:
        if name in self.cols:
            raise ValueError(f"'{name}' is a built-in object column")
        if name not in self.extra:
            self.extra[name] = _empty(name, len(self.cols["frame"]), dtype)
        return self.extra[name][:self.n]

    def append(self, k: int, values: dict[str, Any]) -> np.ndarray:
        """Adds k rows; `values` maps column names to scalars or length-k arrays. Returns the rows."""
        if k <= 0:
            return np.zeros(0, np.int64)
        values = dict(values)
        for name, v in values.items():  # extra columns: a list of k values is one per row
            if name not in self.cols and isinstance(v, (list, tuple)) and len(v) == k:
                values[name] = np.asarray(v)
        for name in [n for n in values if n not in self.cols and n not in self.extra]:
            v = values[name]
            dt = np.asarray(v).dtype if not isinstance(v, (str, dict, list, tuple)) else object
            self.add_column(name, dt)
        self._reserve(k)
        lo, hi = self.n, self.n + k
        for name, v in values.items():
            if v is None:
                continue
            target = self.cols.get(name)
            if target is None:
                target = self.extra[name]
            if target.dtype == object and not (isinstance(v, np.ndarray) and v.ndim == 1 and len(v) == k):
                if name == "label" and isinstance(v, list) and len(v) == k:
                    target[lo:hi] = np.array(v + [None], object)[:k]
                else:  # one value for every row (lists and dicts copied: rows never share them)
                    for i in range(lo, hi):
                        target[i] = type(v)(v) if isinstance(v, (list, dict)) else v
            else:
                target[lo:hi] = v
        self.n = hi
        self._version += 1
        return np.arange(lo, hi)

    def mark_dead(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, np.int64)
        if not len(rows):
            return
        f = self.cols["frame"]
        alive = rows[f[rows] >= 0]
        f[alive] = -1
        self.dead += len(alive)
        self._version += 1

    def take(self, rows: np.ndarray, frame: np.ndarray | int | None = None) -> "ObjectTable":
        """A new table holding `rows` (in that order); parents outside them become -1."""
        rows = np.asarray(rows, np.int64)
        out = ObjectTable(len(rows))
        k = len(rows)
        for name, a in self.cols.items():
            out.cols[name][:k] = a[rows]
        for name, a in self.extra.items():
            col = out.extra[name] = _empty(name, len(out.cols["frame"]), a.dtype)
            col[:k] = a[rows]
        out.n = k
        if frame is not None:
            out.cols["frame"][:k] = frame
        remap_parents(out.cols["parent"][:k], rows)
        return out

    def rows_of(self, slot: int) -> np.ndarray:
        """Rows of frame `slot`, in table order."""
        if self.n == 0:
            return np.zeros(0, np.int64)
        idx = self._index
        if idx is None or idx[0] != self._version:  # once per change: rows grouped by frame
            f = self.cols["frame"][:self.n]
            order = np.argsort(f, kind="stable")
            bounds = np.searchsorted(f[order], np.arange(max(int(f.max()), 0) + 2)).tolist()
            idx = self._index = (self._version, order, bounds)
        _, order, bounds = idx
        if slot < 0 or slot + 1 >= len(bounds):
            return order[:0]
        return order[bounds[slot]:bounds[slot + 1]]

    @staticmethod
    def concat(parts: list[tuple["ObjectTable", np.ndarray, int]]) -> "ObjectTable":
        """Rows gathered from several tables: parts = [(table, rows, new frame index)]."""
        if all(t is parts[0][0] for t, _, _ in parts):  # frames of one batch, batched again
            rows = np.concatenate([r for _, r, _ in parts])
            return parts[0][0].take(rows, np.repeat([s for _, _, s in parts], [len(r) for _, r, _ in parts]))
        total = sum(len(r) for _, r, _ in parts)
        out = ObjectTable(total)
        names_extra: dict[str, Any] = {}
        for t, _, _ in parts:
            for name, a in t.extra.items():
                names_extra.setdefault(name, a.dtype)
        for name, dt in names_extra.items():
            out.add_column(name, dt)
        lo = 0
        for t, rows, slot in parts:
            k = len(rows)
            hi = lo + k
            for name, a in t.cols.items():
                out.cols[name][lo:hi] = a[rows]
            for name in names_extra:
                if name in t.extra:
                    out.extra[name][lo:hi] = t.extra[name][rows]
            out.cols["frame"][lo:hi] = slot
            par = out.cols["parent"][lo:hi]
            remap_parents(par, rows)
            par[par >= 0] += lo
            lo = hi
        out.n = total
        return out


def remap_parents(parent: np.ndarray, rows: np.ndarray) -> None:
    """In place: parent rows of the old table -> positions in `rows` (or -1 when not taken)."""
    has = parent >= 0
    if not has.any():
        return
    pos = {int(r): i for i, r in enumerate(rows.tolist())}
    parent[has] = [pos.get(int(p), -1) for p in parent[has].tolist()]


class BoxView:
    """An object's box (left, top, width, height in pixels), read from and written to its row."""

    __slots__ = ("_t", "_r")

    def __init__(self, table: ObjectTable, row: int):
        self._t, self._r = table, row

    def _get(self) -> np.ndarray:
        return self._t.cols["xyxy"][self._r]

    @property
    def left(self) -> float:
        return self._t.cols["xyxy"].item(self._r, 0)  # item(): a Python float without a row view

    def _move(self, axis: int, v: float) -> None:
        """Moves the box along x (0) or y (1) so its near edge is at v; the size stays."""
        b = self._get()
        size = b[axis + 2] - b[axis]
        b[axis], b[axis + 2] = v, v + size

    @left.setter
    def left(self, v: float) -> None:
        self._move(0, v)

    @property
    def top(self) -> float:
        return self._t.cols["xyxy"].item(self._r, 1)

    @top.setter
    def top(self, v: float) -> None:
        self._move(1, v)

    @property
    def width(self) -> float:
        b, r = self._t.cols["xyxy"], self._r
        return b.item(r, 2) - b.item(r, 0)

    @width.setter
    def width(self, v: float) -> None:
        b = self._get()
        b[2] = b[0] + v

    @property
    def height(self) -> float:
        b, r = self._t.cols["xyxy"], self._r
        return b.item(r, 3) - b.item(r, 1)

    @height.setter
    def height(self, v: float) -> None:
        b = self._get()
        b[3] = b[1] + v

    @property
    def right(self) -> float:
        return self._t.cols["xyxy"].item(self._r, 2)

    @property
    def bottom(self) -> float:
        return self._t.cols["xyxy"].item(self._r, 3)

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.as_xyxy()
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)

    def as_xyxy(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self._get().tolist()
        return (x1, y1, x2, y2)

    def as_ltwh(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self._get().tolist()
        return (x1, y1, x2 - x1, y2 - y1)

    def iou(self, other: Any) -> float:
        from .meta import BBox
        return BBox(*self.as_ltwh()).iou(other)

    def __eq__(self, other: Any) -> bool:
        return hasattr(other, "as_ltwh") and self.as_ltwh() == tuple(other.as_ltwh())

    def __repr__(self) -> str:
        return "BBox(left={:.1f}, top={:.1f}, width={:.1f}, height={:.1f})".format(*self.as_ltwh())


def _num(name: str):
    def get(self: "ObjectMeta"):
        return self._t.cols[name].item(self._r)  # item(): a Python int or float, as the dtype

    def set_(self: "ObjectMeta", v) -> None:
        self._t.cols[name][self._r] = v
    return property(get, set_, doc=f"the object's {name} (stored in its row)")


class ObjectMeta:
    """One object: a view of a row of its batch's object table (NvDsObjectMeta's role).

    `ObjectMeta(class_id, bbox, confidence, label, ...)` makes a detached object (a table of its
    own); `frame.objects.append(obj)` copies it into the frame and moves the view there."""

    __slots__ = ("_t", "_r", "_box")

    def __init__(self, class_id: int = 0, bbox: Any = None, confidence: float = 1.0, label: str = "",
                 object_id: int = UNTRACKED_OBJECT_ID, tracker_confidence: float = 0.0, track_age: int = 0,
                 component_id: int = 0, parent: "ObjectMeta | None" = None, classifications: list | None = None,
                 user_meta: dict | None = None, color: tuple | None = None):
        t = ObjectTable(1)
        xyxy = bbox.as_xyxy() if bbox is not None else (0.0, 0.0, 0.0, 0.0)
        t.append(1, {"xyxy": np.asarray(xyxy, np.float32)[None], "class_id": class_id,
                     "confidence": confidence, "label": label, "object_id": object_id,
                     "tracker_confidence": tracker_confidence, "track_age": track_age,
                     "component_id": component_id})
        t.cols["classifications"][0] = classifications
        t.cols["user_meta"][0] = user_meta
        t.cols["color"][0] = color
        self._t, self._r, self._box = t, 0, None
        if parent is not None:
            self.parent = parent

    @classmethod
    def _view(cls, table: ObjectTable, row: int) -> "ObjectMeta":
        o = cls.__new__(cls)
        o._t, o._r, o._box = table, row, None
        return o

    class_id = _num("class_id")
    confidence = _num("confidence")
    object_id = _num("object_id")
    tracker_confidence = _num("tracker_confidence")
    track_age = _num("track_age")
    component_id = _num("component_id")

    @property
    def label(self) -> str:
        v = self._t.cols["label"][self._r]
        return v if v is not None else ""

    @label.setter
    def label(self, v: str) -> None:
        self._t.cols["label"][self._r] = v

    @property
    def bbox(self) -> BoxView:
        b = self._box
        if b is None:  # one view per object view, kept (dropped when the object moves)
            b = self._box = _new(BoxView)
            b._t, b._r = self._t, self._r
        return b

    @bbox.setter
    def bbox(self, b: Any) -> None:
        self._t.cols["xyxy"][self._r] = b.as_xyxy()

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self._t.cols["xyxy"][self._r].tolist()
        return (x1, y1, x2, y2)

    @xyxy.setter
    def xyxy(self, v: Any) -> None:
        self._t.cols["xyxy"][self._r] = v

    def _listy(self, name: str, make: type) -> Any:
        col = self._t.cols[name]
        v = col[self._r]
        if v is None:
            v = col[self._r] = make()
        return v

    @property
    def classifications(self) -> list:
        """Classifier results (a list stored in the row: appends land)."""
        return self._listy("classifications", list)

    @classifications.setter
    def classifications(self, v: list) -> None:
        self._t.cols["classifications"][self._r] = list(v)

    @property
    def user_meta(self) -> dict:
        return self._listy("user_meta", dict)

    @user_meta.setter
    def user_meta(self, v: dict) -> None:
        self._t.cols["user_meta"][self._r] = v

    @property
    def color(self) -> tuple | None:
        return self._t.cols["color"][self._r]

    @color.setter
    def color(self, v: tuple | None) -> None:
        self._t.cols["color"][self._r] = v

    @property
    def parent(self) -> "ObjectMeta | None":
        p = int(self._t.cols["parent"][self._r])
        return ObjectMeta._view(self._t, p) if p >= 0 else None

    @parent.setter
    def parent(self, p: "ObjectMeta | None") -> None:
        if p is None:
            self._t.cols["parent"][self._r] = -1
            return
        if p._t is not self._t:
            raise ValueError("an object's parent must be an object of the same batch: append both to "
                             "frames first, then set the parent")
        self._t.cols["parent"][self._r] = p._r

    def data(self, name: str) -> Any:
        """The value of an extra column for this object."""
        return self._t.col(name)[self._r]

    def to_dict(self) -> dict[str, Any]:
        return _rows_to_dicts(self._t, np.asarray([self._r]))[0]

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ObjectMeta) and other._t is self._t and other._r == self._r

    def __hash__(self) -> int:
        return hash((id(self._t), self._r))

    def __repr__(self) -> str:
        return (f"ObjectMeta(class_id={self.class_id}, label={self.label!r}, confidence={self.confidence:.3f}, "
                f"bbox={self.bbox!r}, object_id={self.object_id})")


def _rows_to_dicts(t: ObjectTable, rows: np.ndarray) -> list[dict[str, Any]]:
    """JSON-ready dicts for rows, built from columns (jsonsink, to_dict)."""
    if not len(rows):
        return []
    c = t.cols
    xy = c["xyxy"][rows].astype(np.float64)
    ltwh = np.round(np.concatenate([xy[:, :2], xy[:, 2:] - xy[:, :2]], 1), 2).tolist()
    conf = np.round(c["confidence"][rows].astype(np.float64), 4).tolist()
    cls = c["class_id"][rows].tolist()
    oid = c["object_id"][rows].tolist()
    labels = c["label"][rows].tolist()
    cl = c["classifications"][rows].tolist()
    out = []
    for k in range(len(rows)):
        d: dict[str, Any] = {"class_id": cls[k], "label": labels[k] or "", "confidence": conf[k],
                             "bbox": ltwh[k], "object_id": oid[k]}
        if cl[k]:
            d["classifications"] = [
                {"component_id": x.component_id,
                 "labels": [{"class_id": lab.class_id, "label": lab.label, "prob": round(float(lab.prob), 4)}
                            for lab in x.labels]} for x in cl[k]]
        out.append(d)
    return out


class ObjectSet:
    """Some rows of an object table: `frame.objects` (one frame's objects) or `batch.objects`
    (all of them). Iterating yields `ObjectMeta` views; columns come out as arrays:

        objs = frame.objects
        people = objs[objs.class_id == 0]          # boolean mask -> ObjectSet
        people.confidence                          # float32 array
        objs.add(xyxy=boxes, class_id=3, label="car", confidence=scores)
        objs.remove(objs[objs.confidence < 0.3])
    """

    __slots__ = ("_t", "_rows", "_slot")

    def __init__(self, table: ObjectTable, rows: np.ndarray | None, slot: int | None = None):
        self._t = table
        self._rows = rows      # None: every live row of the table
        self._slot = slot      # the frame index new objects go to (frame.objects)

    @classmethod
    def empty(cls) -> "ObjectSet":
        return cls(ObjectTable(), None)

    # -- rows --------------------------------------------------------------------------------
    @property
    def rows(self) -> np.ndarray:
        if self._rows is not None:
            return self._rows
        t = self._t
        if t.dead:
            return np.nonzero(t.cols["frame"][:t.n] >= 0)[0]
        return np.arange(t.n)

    @property
    def table(self) -> ObjectTable:
        return self._t

    def __len__(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        return self._t.n - self._t.dead

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[ObjectMeta]:
        t, new, cls = self._t, _new, ObjectMeta
        for r in self.rows.tolist():  # ObjectMeta._view, inlined: probes iterate every object
            o = new(cls)
            o._t, o._r, o._box = t, r, None
            yield o

    def __contains__(self, obj: Any) -> bool:
        return isinstance(obj, ObjectMeta) and obj._t is self._t and obj._r in set(self.rows.tolist())

    def __getitem__(self, key: Any) -> Any:
        rows = self.rows
        if isinstance(key, (int, np.integer)):
            return ObjectMeta._view(self._t, int(rows[key]))
        return ObjectSet(self._t, rows[key], self._slot)

    def __setitem__(self, key: Any, objs: Iterable[ObjectMeta]) -> None:
        """`frame.objects[:] = [o for o in frame.objects if ...]` replaces the frame's objects."""
        if key != slice(None):
            raise TypeError("assign objects with objs[:] = [...]; change attributes through the views")
        objs = list(objs)
        keep = [o for o in objs if o._t is self._t]
        keep_rows = np.asarray([o._r for o in keep], np.int64)
        self.remove(self[~np.isin(self.rows, keep_rows)])
        if self._rows is not None:
            self._rows = self._rows[np.isin(self._rows, keep_rows)]
        self.extend(o for o in objs if o._t is not self._t)

    def __delitem__(self, key: Any) -> None:
        rows = self.rows[key]
        self._t.mark_dead(np.atleast_1d(rows))
        if self._rows is not None:
            self._rows = self._rows[~np.isin(self._rows, rows)]

    def __repr__(self) -> str:
        return f"ObjectSet({len(self)} objects)"

    # -- columns -----------------------------------------------------------------------------
    def _get(self, name: str) -> np.ndarray:
        a = self._t.col(name)
        if self._rows is None and not self._t.dead:
            return a
        return a[self.rows]

    def _set(self, name: str, value: Any) -> None:
        a = self._t.col(name)
        if self._rows is None and not self._t.dead:
            a[:] = value
        else:
            a[self.rows] = value

    frame = property(lambda s: s._get("frame"), lambda s, v: s._set("frame", v),
                     doc="index of each object's frame in the batch")
    xyxy = property(lambda s: s._get("xyxy"), lambda s, v: s._set("xyxy", v), doc="boxes [N,4] float32, pixels")
    confidence = property(lambda s: s._get("confidence"), lambda s, v: s._set("confidence", v))
    class_id = property(lambda s: s._get("class_id"), lambda s, v: s._set("class_id", v))
    object_id = property(lambda s: s._get("object_id"), lambda s, v: s._set("object_id", v))
    tracker_confidence = property(lambda s: s._get("tracker_confidence"),
                                  lambda s, v: s._set("tracker_confidence", v))
    track_age = property(lambda s: s._get("track_age"), lambda s, v: s._set("track_age", v))
    component_id = property(lambda s: s._get("component_id"), lambda s, v: s._set("component_id", v))
    parent_row = property(lambda s: s._get("parent"), lambda s, v: s._set("parent", v),
                          doc="row of each object's parent in the batch table (-1: none)")
    label = property(lambda s: s._get("label"), lambda s, v: s._set("label", v), doc="object array of str")

    @property
    def labels(self) -> list[str]:
        return [v or "" for v in self._get("label").tolist()]

    @property
    def ltwh(self) -> np.ndarray:
        b = self.xyxy
        return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)

    def data(self, name: str) -> np.ndarray:
        """An extra column (user data, analytics results ...) for these objects."""
        return self._get(name)

    def set_data(self, name: str, values: Any, dtype: Any = None) -> None:
        """Sets an extra column for these objects (created for the whole table when new)."""
        if name not in self._t.extra and name not in self._t.cols:
            self._t.add_column(name, dtype or np.asarray(values).dtype)
        self._set(name, values)

    # -- changes -----------------------------------------------------------------------------
    def _target_slot(self) -> int:
        if self._slot is None:
            raise TypeError("add objects to a frame (frame.objects.add/append), or pass frame= to batch.objects.add")
        return self._slot

    def add(self, *, xyxy: Any, frame: Any = None, **columns: Any) -> "ObjectSet":
        """Adds objects from columns (scalars broadcast); returns the new rows as an ObjectSet."""
        box = np.asarray(xyxy, np.float32).reshape(-1, 4)
        k = len(box)
        values = {"xyxy": box, "frame": self._target_slot() if frame is None else frame, **columns}
        rows = self._t.append(k, values)
        if self._rows is not None:
            self._rows = np.concatenate([self._rows, rows])
        return ObjectSet(self._t, rows, self._slot)

    def append(self, obj: ObjectMeta) -> ObjectMeta:
        """Copies `obj` (a detached object, or one of another frame) in; `obj` becomes a view of
        the new row."""
        self.extend((obj,))
        return obj

    def extend(self, objs: "Iterable[ObjectMeta] | ObjectSet") -> None:
        slot = self._target_slot()
        if isinstance(objs, ObjectSet):
            src, rows = objs._t, objs.rows
            part = src.take(rows, slot)
            part.cols["parent"][:part.n] = np.where(part.cols["parent"][:part.n] >= 0,
                                                    part.cols["parent"][:part.n] + self._t.n, -1)
            self._absorb(part)
            return
        for o in objs:
            src, r = o._t, o._r
            values = {name: src.cols[name][r:r + 1] for name in COLUMNS}
            values.update({name: a[r:r + 1] for name, a in src.extra.items()})
            values["frame"] = slot
            parent = o.parent if src is not self._t else None
            values["parent"] = -1 if src is not self._t else src.cols["parent"][r]
            new = int(self._t.append(1, values)[0])
            if src is not self._t and parent is not None and parent._t is self._t:
                self._t.cols["parent"][new] = parent._r
            if self._rows is not None:
                self._rows = np.append(self._rows, new)
            o._t, o._r, o._box = self._t, new, None  # a kept box view would read the old row

    def __iadd__(self, objs: "Iterable[ObjectMeta] | ObjectSet") -> "ObjectSet":
        self.extend(objs)
        return self

    def _absorb(self, part: ObjectTable) -> None:
        values = {name: part.cols[name][:part.n] for name in COLUMNS}
        values.update({name: a[:part.n] for name, a in part.extra.items()})
        rows = self._t.append(part.n, values)
        if self._rows is not None:
            self._rows = np.concatenate([self._rows, rows])

    def remove(self, objs: "ObjectMeta | ObjectSet | np.ndarray") -> None:
        """Removes objects (an ObjectMeta, an ObjectSet, or a boolean mask over this set)."""
        if isinstance(objs, ObjectMeta):
            rows = np.asarray([objs._r], np.int64)
        elif isinstance(objs, ObjectSet):
            rows = objs.rows
        else:
            rows = self.rows[np.asarray(objs)]
        self._t.mark_dead(rows)
        if self._rows is not None:
            self._rows = self._rows[~np.isin(self._rows, rows)]

    def clear(self) -> None:
        self.remove(self)

    def to_dicts(self) -> list[dict[str, Any]]:
        return _rows_to_dicts(self._t, self.rows)

    # -- supervision -------------------------------------------------------------------------
    def to_supervision(self):
        """These objects as a `supervision.Detections` (class_name and object columns in data)."""
        import supervision as sv
        oid = self.object_id
        return sv.Detections(xyxy=self.xyxy.astype(np.float32), confidence=self.confidence.copy(),
                             class_id=self.class_id.astype(int),
                             tracker_id=np.where(oid >= 0, oid, -1) if (oid >= 0).any() else None,
                             data={"class_name": np.asarray(self.labels, dtype=object)})

    @classmethod
    def from_supervision(cls, detections: Any, labels: dict[int, str] | None = None) -> "ObjectSet":
        """A detached ObjectSet from `supervision.Detections`; add it with frame.objects.extend(it)."""
        s = cls(ObjectTable(len(detections)), None, slot=0)
        n = len(detections)
        cid = detections.class_id if detections.class_id is not None else np.zeros(n, int)
        names = (detections.data or {}).get("class_name")
        if names is None:
            names = [(labels or {}).get(int(c), str(int(c))) for c in cid]
        s.add(xyxy=detections.xyxy, class_id=cid,
              confidence=detections.confidence if detections.confidence is not None else 1.0,
              object_id=detections.tracker_id if detections.tracker_id is not None else UNTRACKED_OBJECT_ID,
              label=np.asarray(list(names), dtype=object))
        return s
