"""The analytics computation, on a batch's object table at once (no element, no threads).

Rules of every stream present are scaled to the stream's frame size once and stacked, padded, so
that one numpy step serves all the objects of all the frames of a batch: anchors, point in
polygon, side of each line, movement against each direction. Only the bookkeeping of tracks
(which row of the state table an object id has) is a Python loop, one dict lookup per object.

Semantics (docs/analytics.md has them with examples):
- An object's position is its box's anchor: bottom centre by default (DeepStream's choice).
- ROI and overcrowding: the anchor is inside the polygon or on its edge (even-odd rule);
  inverse-roi flips it.
- Lines and directions need tracked objects (object_id >= 0); untracked ones are ignored there.
- A line keeps, per object, the side it was last seen on *clearly* (farther from the line than
  the mode's margin) and the point where that was. When the object is next clearly on the other
  side, the path from that point to the new one is tested against the line (the segment, or the
  infinite line with extended=1): a crossing is found however far the object jumped between
  frames and however many frames the detector missed, while jitter inside the margin never
  counts. It counts "in" when the object ends on the side the line's direction points to, "out"
  otherwise; one count per object, line and direction unless count-every-crossing=1.
- Modes: loose (margin 0, 2 observations), balanced (margin max(2 px, 10% of the box height),
  3 observations), strict (margin max(4 px, 20% of the box height), 5 observations, and the
  path within 60 degrees of the direction). A track that crosses before it has the observations
  is counted when it has them, if it is still across.
- Direction: the movement from the oldest of the last 10 positions to now, when it is at least
  the mode's distance (2 / 5 / 10 px), takes the name of the configured direction closest to it
  (within 90 / 45 / 30 degrees).
- Overcrowding: a ROI is overcrowded while it holds at least object-threshold objects (of its
  classes) and has done so for time-threshold ms (frame timestamps).
- A tracked object unseen for forget-after-ms (default 8000) is forgotten: its id, if seen
  again, starts afresh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import AnalyticsConfig

HISTORY = 10  # positions kept per object for direction (DeepStream's LAST_N_FRAMES)
_MODE = {  # margin px, margin share of box height, observations, min |cos| of path vs direction
    "loose": (0.0, 0.0, 2, -1.0), "balanced": (2.0, 0.10, 3, -1.0), "strict": (4.0, 0.20, 5, 0.5)}
_DIR_MODE = {"loose": (2.0, 0.0), "balanced": (5.0, 0.7071), "strict": (10.0, 0.8660)}  # min move px, min cos


@dataclass(slots=True)
class AnalyticsFrameMeta:
    """Per frame results (frame.meta.user_meta["analytics"]); DeepStream's NvDsAnalyticsFrameMeta
    names are properties beside ours."""
    unique_id: int = 0
    obj_in_roi_cnt: dict[str, int] = field(default_factory=dict)
    obj_lc_curr_cnt: dict[str, int] = field(default_factory=dict)     # crossings in the line's direction
    obj_lc_cum_cnt: dict[str, int] = field(default_factory=dict)
    lc_curr_against: dict[str, int] = field(default_factory=dict)     # crossings the other way
    lc_cum_against: dict[str, int] = field(default_factory=dict)
    lc_cum_by_class: dict[str, dict[int, int]] = field(default_factory=dict)
    lc_cum_against_by_class: dict[str, dict[int, int]] = field(default_factory=dict)
    oc_status: dict[str, bool] = field(default_factory=dict)
    oc_count: dict[str, int] = field(default_factory=dict)
    obj_cnt: dict[int, int] = field(default_factory=dict)             # objects per class in the frame
    roi_names: list[str] = field(default_factory=list)                # bit j of an object's roi mask
    oc_names: list[str] = field(default_factory=list)
    line_names: list[str] = field(default_factory=list)
    direction_names: list[str] = field(default_factory=list)

    # DeepStream's names (pyds.NvDsAnalyticsFrameMeta)
    objInROIcnt = property(lambda self: self.obj_in_roi_cnt)
    objLCCurrCnt = property(lambda self: self.obj_lc_curr_cnt)
    objLCCumCnt = property(lambda self: self.obj_lc_cum_cnt)
    ocStatus = property(lambda self: self.oc_status)
    objCnt = property(lambda self: self.obj_cnt)

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready dicts (jsonsink writes them beside the objects)."""
        out: dict[str, Any] = {}
        for k in ("obj_in_roi_cnt", "obj_lc_curr_cnt", "obj_lc_cum_cnt", "lc_curr_against", "lc_cum_against",
                  "oc_status", "oc_count"):
            v = getattr(self, k)
            if v:
                out[k] = dict(v)
        return out

    def obj_info(self, obj: Any) -> AnalyticsObjInfo:
        """An object's results by name (DeepStream's NvDsAnalyticsObjInfo)."""
        def names(mask: int, table: list[str]) -> list[str]:
            return [n for j, n in enumerate(table) if mask >> j & 1]
        d = int(obj.data("analytics_direction"))
        return AnalyticsObjInfo(names(int(obj.data("analytics_roi")), self.roi_names),
                                names(int(obj.data("analytics_oc")), self.oc_names),
                                names(int(obj.data("analytics_lines")), self.line_names),
                                self.direction_names[d - 1] if d > 0 else "", self.unique_id)


@dataclass
class AnalyticsObjInfo:
    roiStatus: list[str]
    ocStatus: list[str]
    lcStatus: list[str]
    dirStatus: str
    unique_id: int = 0


class _Geometry:
    """One stream's rules scaled to its frame size, padded to the config's largest counts."""

    def __init__(self, cfg: AnalyticsConfig, stream: int, w: int, h: int, dims: tuple[int, int, int, int, int]):
        rmax, omax, vmax, lmax, dmax = dims
        sx, sy = w / cfg.config_width, h / cfg.config_height
        self.scale = float(np.sqrt(sx * sy))
        rules = cfg.rules(stream)

        def polys(rois: list, count: int) -> tuple[np.ndarray, np.ndarray]:
            e = np.zeros((count, vmax, 4), np.float64)  # x1 y1 x2 y2 per edge; padding edges are points
            used = np.zeros(count, bool)
            for j, roi in enumerate(rois):
                p = np.asarray(roi.points, np.float64) * (sx, sy)
                q = np.roll(p, -1, 0)
                e[j, :len(p)] = np.concatenate([p, q], 1)
                used[j] = True
            return e, used

        def classes(ids: list[int]) -> np.ndarray | None:
            return np.asarray(ids, np.int64) if ids else None
        rf = rules.roi
        self.roi_edges, self.roi_used = polys(rf.rois if rf else [], rmax)
        self.roi_inverse = bool(rf and rf.inverse)
        self.roi_classes = classes(rf.class_ids) if rf else None
        self.roi_names = [r.name for r in rf.rois] if rf else []
        oc = rules.overcrowding
        self.oc_edges, self.oc_used = polys(oc.rois if oc else [], omax)
        self.oc_classes = classes(oc.class_ids) if oc else None
        self.oc_names = [r.name for r in oc.rois] if oc else []
        self.oc_threshold = oc.object_threshold if oc else 0
        self.oc_time_s = oc.time_threshold_ms / 1000.0 if oc else 0.0
        lc = rules.lines
        self.l1 = np.zeros((lmax, 2))
        self.l2 = np.zeros((lmax, 2))
        self.ldir = np.zeros((lmax, 2))
        self.lorient = np.zeros(lmax)
        self.lnorm = np.zeros((lmax, 3))
        self.lused = np.zeros(lmax, bool)
        for j, ln in enumerate(lc.lines if lc else []):
            a, b = np.asarray(ln.line[0]) * (sx, sy), np.asarray(ln.line[1]) * (sx, sy)
            d = (np.asarray(ln.direction[1]) - np.asarray(ln.direction[0])) * (sx, sy)
            self.l1[j], self.l2[j], self.ldir[j] = a, b, d / np.hypot(*d)
            v = b - a
            side = v[0] * d[1] - v[1] * d[0]  # which side of the line the direction points to
            self.lorient[j] = 1.0 if side > 0 else -1.0
            self.lused[j] = side != 0
            n = np.asarray([-v[1], v[0]]) / np.hypot(*v) * self.lorient[j]  # unit normal towards the direction
            self.lnorm[j] = (n[0], n[1], -(n @ a))
        self.line_names = [ln.name for ln in lc.lines] if lc else []
        self.lc = lc
        self.l_classes = classes(lc.class_ids) if lc else None
        margin_px, margin_share, self.min_obs, self.min_cos = _MODE[lc.mode if lc else "balanced"]
        self.margin_px, self.margin_share = margin_px * self.scale, margin_share
        dd = rules.directions
        self.dvec = np.zeros((dmax, 2))
        self.dused = np.zeros(dmax, bool)
        for j, dr in enumerate(dd.directions if dd else []):
            d = (np.asarray(dr.vector[1]) - np.asarray(dr.vector[0])) * (sx, sy)
            self.dvec[j], self.dused[j] = d / np.hypot(*d), True
        self.direction_names = [dr.name for dr in dd.directions] if dd else []
        self.d_classes = classes(dd.class_ids) if dd else None
        move, cos = _DIR_MODE[dd.mode if dd else "balanced"]
        self.dir_move, self.dir_cos = move * self.scale, cos
        self.has_lines, self.has_dirs = bool(self.line_names), bool(self.direction_names)
        self.has_oc = bool(self.oc_names)


def _inside(pts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Inside or on the boundary (even-odd rule): pts [n, 2], edges [n, R, V, 4] -> [n, R] bool.
    Edges are included, so a full-frame ROI holds objects whose boxes touch the frame's edge."""
    x, y = pts[:, 0, None, None], pts[:, 1, None, None]
    x1, y1, x2, y2 = edges[..., 0], edges[..., 1], edges[..., 2], edges[..., 3]
    straddle = (y1 > y) != (y2 > y)
    ex, ey = x2 - x1, y2 - y1
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = x1 + (y - y1) * ex / ey
    inside = (straddle & (x < xc)).sum(-1) % 2 == 1
    rx, ry = x - x1, y - y1
    len2 = ex * ex + ey * ey
    dot = rx * ex + ry * ey
    on = (len2 > 0) & (np.abs(ex * ry - ey * rx) <= 1e-9 * (len2 + 1)) & (dot >= 0) & (dot <= len2)
    return inside | on.any(-1)


def _per_frame(fi: np.ndarray, hits: np.ndarray, frames: int) -> np.ndarray:
    """[rows, K] bool -> [frames, K] counts (one bincount)."""
    k = hits.shape[1]
    r, j = np.nonzero(hits)
    return np.bincount(fi[r] * k + j, minlength=frames * k).reshape(frames, k)


def _allowed(cls: np.ndarray, allowed: list[np.ndarray | None], gid: np.ndarray) -> np.ndarray:
    """Per object: its class is among its stream's group classes (None: all)."""
    ok = np.ones(len(cls), bool)
    for g, ids in enumerate(allowed):
        if ids is not None:
            m = gid == g
            ok[m] = np.isin(cls[m], ids)
    return ok


class AnalyticsEngine:
    def __init__(self, cfg: AnalyticsConfig, unique_id: int = 0):
        self.cfg = cfg
        self.unique_id = unique_id
        streams = list(cfg.streams.values())

        def most(fn) -> int:
            return max([fn(r) for r in streams] + [0])
        self.rmax = max(most(lambda r: len(r.roi.rois) if r.roi else 0), 1)
        self.omax = max(most(lambda r: len(r.overcrowding.rois) if r.overcrowding else 0), 1)
        self.vmax = max(most(lambda r: max([len(x.points) for x in (r.roi.rois if r.roi else [])] +
                                           [len(x.points) for x in (r.overcrowding.rois if r.overcrowding else [])] + [0])), 3)
        self.lmax = max(most(lambda r: len(r.lines.lines) if r.lines else 0), 1)
        self.dmax = max(most(lambda r: len(r.directions.directions) if r.directions else 0), 1)
        if max(self.rmax, self.omax, self.lmax) > 62:
            raise ValueError("at most 62 ROIs, overcrowding ROIs and lines per stream (results are bit masks)")
        self._geos: list[_Geometry] = []
        self._geo_index: dict[tuple[int, int, int], int] = {}
        self._stack: dict[str, np.ndarray] = {}
        # tracked objects: one row each
        self._sorted_keys = np.zeros(0, np.int64)   # (stream << 40 | object id), sorted
        self._sorted_rows = np.zeros(0, np.int64)
        cap = 64
        self._sid = np.zeros(cap, np.int64)  # each row's stream (forgetting goes by the stream's clock)
        self._seen = np.full(cap, -np.inf)
        self._nobs = np.zeros(cap, np.int64)
        self._side = np.zeros((cap, self.lmax), np.int8)
        self._commit = np.zeros((cap, self.lmax, 2))
        self._counted = np.zeros((cap, self.lmax, 2), bool)
        self._hist = np.zeros((cap, HISTORY, 2))
        self._free: list[int] = []
        self._n = 0
        # per stream totals and overcrowding clocks
        self.cum: dict[int, np.ndarray] = {}                 # stream -> [lines, 2] (in, out)
        self.cum_by_class: dict[int, dict[tuple[int, int], dict[int, int]]] = {}
        self._oc_since: dict[int, np.ndarray] = {}           # stream -> [omax] pts when the run began
        self._last_gc = -np.inf

    # -- geometry ----------------------------------------------------------------------------
    def _gid(self, stream: int, w: int, h: int) -> int:
        key = (stream, w, h)
        g = self._geo_index.get(key)
        if g is None:
            g = self._geo_index[key] = len(self._geos)
            self._geos.append(_Geometry(self.cfg, stream, w, h, (self.rmax, self.omax, self.vmax, self.lmax, self.dmax)))
            gs = self._geos
            self._stack = {k: np.stack([getattr(x, k) for x in gs]) for k in
                           ("roi_edges", "roi_used", "oc_edges", "oc_used", "l1", "l2", "ldir", "lorient", "lnorm", "lused",
                            "dvec", "dused")}
            self._stack["roi_inverse"] = np.asarray([x.roi_inverse for x in gs])
            self._stack["margin"] = np.asarray([(x.margin_px, x.margin_share) for x in gs])
            self._stack["min_obs"] = np.asarray([x.min_obs for x in gs])
            self._stack["min_cos"] = np.asarray([x.min_cos for x in gs])
            self._stack["dir_move"] = np.asarray([(x.dir_move, x.dir_cos) for x in gs])
            self._stack["extended"] = np.asarray([bool(x.lc and x.lc.extended) for x in gs])
            self._stack["every"] = np.asarray([bool(x.lc and x.lc.count_every_crossing) for x in gs])
        return g

    # -- track state -------------------------------------------------------------------------
    def _grow(self, need: int) -> None:
        cap = len(self._seen)
        if need <= cap:
            return
        new = max(need, cap * 2)
        for name in ("_sid", "_seen", "_nobs", "_side", "_commit", "_counted", "_hist"):
            a = getattr(self, name)
            b = np.zeros((new, *a.shape[1:]), a.dtype)
            if name == "_seen":
                b[:] = -np.inf
            b[:cap] = a
            setattr(self, name, b)

    def _state_rows(self, sid: np.ndarray, oid: np.ndarray) -> np.ndarray:
        """State rows of tracked objects (new ones get fresh, reset rows). Keys (stream << 40 | id)
        are kept sorted, so finding a batch's rows is one searchsorted."""
        keys = (sid << 40) | (oid & ((1 << 40) - 1))
        pos = np.searchsorted(self._sorted_keys, keys)
        pos_c = np.minimum(pos, len(self._sorted_keys) - 1)
        found = self._sorted_keys[pos_c] == keys if len(self._sorted_keys) else np.zeros(len(keys), bool)
        rows = np.empty(len(keys), np.int64)
        rows[found] = self._sorted_rows[pos_c[found]]
        new = ~found
        if new.any():
            fresh_keys = np.unique(keys[new])
            fresh_rows = np.empty(len(fresh_keys), np.int64)
            for i in range(len(fresh_keys)):
                if self._free:
                    fresh_rows[i] = self._free.pop()
                else:
                    fresh_rows[i] = self._n
                    self._n += 1
            self._grow(self._n)
            at = np.searchsorted(self._sorted_keys, fresh_keys)
            self._sorted_keys = np.insert(self._sorted_keys, at, fresh_keys)
            self._sorted_rows = np.insert(self._sorted_rows, at, fresh_rows)
            self._sid[fresh_rows] = fresh_keys >> 40
            rows[new] = fresh_rows[np.searchsorted(fresh_keys, keys[new])]
            self._nobs[fresh_rows] = 0
            self._side[fresh_rows] = 0
            self._counted[fresh_rows] = False
        return rows

    def _forget(self, now: dict[int, float]) -> None:
        """Drops objects of these streams unseen for forget-after-ms (by their stream's clock);
        looked at twice per forget period."""
        limit = self.cfg.forget_after_ms / 1000.0
        t = min(now.values(), default=-np.inf)
        if not len(self._sorted_keys) or t - self._last_gc < limit / 2:
            return
        self._last_gc = t
        n = self._n
        sid = self._sid[:n]
        old = np.zeros(n, bool)
        for s, ts in now.items():
            old |= (sid == s) & (self._seen[:n] < ts - limit) & np.isfinite(self._seen[:n])
        rows = np.nonzero(old)[0]
        if not len(rows):
            return
        keep = ~np.isin(self._sorted_rows, rows)
        self._sorted_keys, self._sorted_rows = self._sorted_keys[keep], self._sorted_rows[keep]
        self._seen[rows] = -np.inf
        self._free.extend(rows.tolist())

    # -- one batch ---------------------------------------------------------------------------
    def process(self, batch: Any) -> list[AnalyticsFrameMeta]:
        """Adds the per-object columns to the batch's objects and returns each frame's results
        (also attached as frame.meta.user_meta["analytics"])."""
        frames = batch.frames
        objs = batch.objects
        n = len(objs)
        fgid = np.asarray([self._gid(f.source_id, *self._size(f)) for f in frames], np.int64)
        fi = objs.frame.astype(np.int64)
        gid = fgid[fi] if n else np.zeros(0, np.int64)
        st = self._stack
        xyxy = objs.xyxy.astype(np.float64)
        pts = self._anchor(xyxy)
        cls = objs.class_id.astype(np.int64)
        bits_r = (1 << np.arange(self.rmax, dtype=np.int64))
        # ROI filtering (stateless)
        roi_in = np.zeros((n, self.rmax), bool)
        if n:
            roi_in = _inside(pts, st["roi_edges"][gid])
            roi_in ^= st["roi_inverse"][gid][:, None]
            roi_in &= st["roi_used"][gid]
            roi_in &= self._classes_ok(cls, "roi_classes", gid)[:, None]
        roi_mask = (roi_in * bits_r).sum(1)
        oc_in = np.zeros((n, self.omax), bool)
        if n:
            oc_in = _inside(pts, st["oc_edges"][gid]) & st["oc_used"][gid]
            oc_in &= self._classes_ok(cls, "oc_classes", gid)[:, None]
        lines_mask = np.zeros(n, np.int64)
        direction = np.zeros(n, np.int16)
        crossed = np.zeros((n, self.lmax, 2), bool)
        # tracked objects: lines and directions, in rounds of distinct streams (a stream's frames in order)
        rounds = batch.rounds()
        tracked = objs.object_id >= 0
        totals: dict[int, tuple] = {}  # frame -> its stream's running totals after it (rounds run in order)
        for members in rounds:
            sel = np.nonzero(tracked & np.isin(fi, members))[0] if n else np.zeros(0, np.int64)
            self._update_tracks(sel, frames, fi, gid, pts, xyxy, cls, objs, crossed, direction)
            if len(rounds) > 1:
                for k in members:
                    sid_k = frames[k].source_id
                    totals[k] = (self.cum.get(sid_k, np.zeros((self.lmax, 2), np.int64)).copy(),
                                 {key: dict(v) for key, v in self.cum_by_class.get(sid_k, {}).items()})
        if n:
            lines_mask = (crossed.any(2) * (1 << np.arange(self.lmax, dtype=np.int64))).sum(1)
        # per frame results: counts for all frames at once, then each frame's dicts
        nf = len(frames)
        roi_cnt = np.zeros((nf, self.rmax), np.int64)
        oc_cnt = np.zeros((nf, self.omax), np.int64)
        now_cnt = np.zeros((nf, self.lmax, 2), np.int64)
        cls_keys: list = [[] for _ in range(nf)]
        if n:
            roi_cnt = _per_frame(fi, roi_in, nf)
            oc_cnt = _per_frame(fi, oc_in, nf)
            if crossed.any():
                now_cnt = _per_frame(fi, crossed.reshape(n, -1), nf).reshape(nf, self.lmax, 2)
            ncls = int(cls.max()) + 1 if cls.min() >= 0 else 0
            if ncls:
                per = np.bincount(fi * ncls + cls, minlength=nf * ncls).reshape(nf, ncls)
                cls_keys = [(np.nonzero(row)[0], row) for row in per]
        metas = []
        oc_mask = np.zeros(n, np.int64)
        oc_bad = np.zeros((nf, self.omax), bool)
        for k, f in enumerate(frames):
            g = self._geos[fgid[k]]
            m = AnalyticsFrameMeta(self.unique_id, roi_names=g.roi_names, oc_names=g.oc_names,
                                   line_names=g.line_names, direction_names=g.direction_names)
            m.obj_in_roi_cnt = dict(zip(g.roi_names, roi_cnt[k].tolist()))
            if n and len(cls_keys[k]):
                ids, row = cls_keys[k]
                m.obj_cnt = dict(zip(ids.tolist(), row[ids].tolist()))
            elif n:
                c, cnt = np.unique(cls[fi == k], return_counts=True)
                m.obj_cnt = dict(zip(c.tolist(), cnt.tolist()))
            if g.has_oc:
                self._overcrowding(f, g, oc_cnt[k], m)
                oc_bad[k, :len(g.oc_names)] = [m.oc_status[nm] for nm in g.oc_names]
            if g.has_lines:
                if k in totals:
                    cum, byc = totals[k]
                else:
                    cum = self.cum.setdefault(f.source_id, np.zeros((self.lmax, 2), np.int64))
                    byc = self.cum_by_class.setdefault(f.source_id, {})
                now, tot = now_cnt[k].tolist(), cum.tolist()
                for j, name in enumerate(g.line_names):
                    m.obj_lc_curr_cnt[name], m.lc_curr_against[name] = now[j]
                    m.obj_lc_cum_cnt[name], m.lc_cum_against[name] = tot[j]
                    m.lc_cum_by_class[name] = dict(byc.get((j, 0), {}))
                    m.lc_cum_against_by_class[name] = dict(byc.get((j, 1), {}))
            f.meta.user_meta["analytics"] = m
            metas.append(m)
        if n and oc_bad.any():
            oc_mask = ((oc_in & oc_bad[fi]) * (1 << np.arange(self.omax, dtype=np.int64))).sum(1)
        if n:
            objs.set_data("analytics_roi", roi_mask, np.int64)
            objs.set_data("analytics_oc", oc_mask, np.int64)
            objs.set_data("analytics_lines", lines_mask, np.int64)
            objs.set_data("analytics_direction", direction, np.int16)
        self._forget({f.source_id: f.pts_seconds for f in frames})
        return metas

    @staticmethod
    def _size(f: Any) -> tuple[int, int]:
        return int(f.width), int(f.height)

    def _anchor(self, b: np.ndarray) -> np.ndarray:
        a = self.cfg.anchor
        x = {"left": b[:, 0], "right": b[:, 2]}.get(a.split("-")[-1], (b[:, 0] + b[:, 2]) / 2)
        y = b[:, 3] if a.startswith("bottom") else (b[:, 1] if a.startswith("top") else (b[:, 1] + b[:, 3]) / 2)
        return np.stack([x, y], 1)

    def _update_tracks(self, sel, frames, fi, gid, pts, xyxy, cls, objs, crossed, direction) -> None:
        if not len(sel):
            return
        st = self._stack
        fsel = fi[sel]
        sid = np.asarray([f.source_id for f in frames], np.int64)[fsel]
        tnow = np.asarray([f.pts_seconds for f in frames])[fsel]
        rows = self._state_rows(sid, objs.object_id[sel].astype(np.int64))
        g = gid[sel]
        p = pts[sel]
        self._nobs[rows] += 1
        self._seen[rows] = tnow
        nobs = self._nobs[rows]
        # history for direction (oldest first)
        self._hist[rows, :-1] = self._hist[rows, 1:]
        self._hist[rows, -1] = p
        fresh = nobs == 1
        if fresh.any():
            self._hist[rows[fresh]] = p[fresh, None]
        # lines: signed distance to each line (positive: the side its direction points to)
        lc_ok = self._classes_ok(cls[sel], "l_classes", g) & st["lused"][g].any(1)
        if lc_ok.any():
            i = np.nonzero(lc_ok)[0]
            r, gg, pp = rows[i], g[i], p[i]
            nrm = st["lnorm"][gg]                                        # [n, L, 3]: unit normal, offset
            dist = nrm[..., 0] * pp[:, 0:1] + nrm[..., 1] * pp[:, 1:2] + nrm[..., 2]
            hbox = xyxy[sel[i], 3] - xyxy[sel[i], 1]
            mg = st["margin"][gg]
            margin = np.maximum(mg[:, 0], mg[:, 1] * hbox)[:, None]
            side = (dist > margin).astype(np.int8) - (dist < -margin)
            side[~st["lused"][gg]] = 0
            prev = self._side[r]
            flip = (side != 0) & (prev != 0) & (side != prev)
            moved = side != 0
            if flip.any():  # a young track's flip waits (side and commit point kept) until it is old enough
                a, j = np.nonzero(flip)
                young = self._crossings((a, j), i, r, gg, pp, side, nobs, sel, sid, cls, crossed)
                moved[a[young], j[young]] = False
            self._side[r] = np.where(moved, side, prev)
            if moved.any():
                a, j = np.nonzero(moved)
                self._commit[r[a], j] = pp[a]
        # directions
        d_ok = self._classes_ok(cls[sel], "d_classes", g) & st["dused"][g].any(1)
        if d_ok.any():
            i = np.nonzero(d_ok)[0]
            r, gg = rows[i], g[i]
            mv = self._hist[r, -1] - self._hist[r, 0]
            norm = np.hypot(mv[:, 0], mv[:, 1])
            cos = (st["dvec"][gg] * mv[:, None, :]).sum(-1) / np.where(norm > 0, norm, 1)[:, None]
            cos = np.where(st["dused"][gg], cos, -2.0)
            best = cos.argmax(1)
            good = (norm >= st["dir_move"][gg, 0]) & (cos[np.arange(len(i)), best] >= st["dir_move"][gg, 1])
            good &= cos[np.arange(len(i)), best] > 0
            direction[sel[i]] = np.where(good, best + 1, 0)

    def _crossings(self, where, i, r, gg, pp, side, nobs, sel, sid, cls, crossed) -> np.ndarray:
        """Objects now clearly on the other side of a line than at their commit point: a crossing
        where the path between the two meets the line (anywhere with extended=1), the track is
        old enough and (strict) the path runs along the direction. Returns the flips that wait
        for the track to be old enough."""
        st = self._stack
        a, j = where
        ga = gg[a]
        l1, l2 = st["l1"][ga, j], st["l2"][ga, j]
        v = l2 - l1
        c = self._commit[r[a], j]
        d = pp[a] - c                                                    # path from the commit point
        den = v[:, 0] * d[:, 1] - v[:, 1] * d[:, 0]
        cl = c - l1
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (cl[:, 0] * d[:, 1] - cl[:, 1] * d[:, 0]) / den
        on_line = st["extended"][ga] | ((t >= 0) & (t <= 1))
        norm = np.hypot(d[:, 0], d[:, 1])
        cos = (d * st["ldir"][ga, j]).sum(-1) / np.where(norm > 0, norm, 1)
        old_enough = nobs[i[a]] >= st["min_obs"][ga]
        young = on_line & ~old_enough
        hit = on_line & (np.abs(cos) >= st["min_cos"][ga]) & old_enough
        kk = (side[a, j] < 0).astype(np.int64)                          # 0: with the direction, 1: against
        hit &= st["every"][ga] | ~self._counted[r[a], j, kk]
        a, j, kk = a[hit], j[hit], kk[hit]
        self._counted[r[a], j, kk] = True
        crossed[sel[i[a]], j, kk] = True
        for aa, jj, kx in zip(a.tolist(), j.tolist(), kk.tolist()):
            s = int(sid[i[aa]])
            cum = self.cum.setdefault(s, np.zeros((self.lmax, 2), np.int64))
            cum[jj, kx] += 1
            byc = self.cum_by_class.setdefault(s, {}).setdefault((jj, kx), {})
            c_id = int(cls[sel[i[aa]]])
            byc[c_id] = byc.get(c_id, 0) + 1
        return young

    def _classes_ok(self, cls: np.ndarray, attr: str, gid: np.ndarray) -> np.ndarray:
        allowed = [getattr(x, attr) for x in self._geos]
        if all(a is None for a in allowed):
            return np.ones(len(cls), bool)
        return _allowed(cls, allowed, gid)

    def _overcrowding(self, f: Any, g: _Geometry, counts: np.ndarray, m: AnalyticsFrameMeta) -> None:
        since = self._oc_since.setdefault(f.source_id, np.full(self.omax, np.nan))
        for j, name in enumerate(g.oc_names):
            over = counts[j] >= g.oc_threshold
            if not over:
                since[j] = np.nan
            elif np.isnan(since[j]):
                since[j] = f.pts_seconds
            m.oc_count[name] = int(counts[j])
            m.oc_status[name] = bool(over and f.pts_seconds - since[j] >= g.oc_time_s - 1e-9)
