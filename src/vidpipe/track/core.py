"""The tracking engine: every track of every stream in one set of arrays.

One `update()` handles a whole batch (frames of many streams): Kalman prediction and
correction, IoU matrices and assignment are computed for all streams at once (IoU on arrays
padded per stream, [streams, tracks, detections]). The Hungarian solver runs only for streams
where some track or detection has more than one candidate; everywhere else the match is unique
and read off the candidate mask directly.

The smallest case (one stream, a few objects) is bound by the fixed cost of each array
operation, not by arithmetic, so `update()` counts its operations: no gather or scatter when a
selection is every row, `np.count_nonzero` rather than `.any()`/`.all()` (a third of the cost
on small arrays), and the Kalman filter and IoU of one or two tracks in plain floats (the same
operations in the same order as the array forms, so the same bits: see kalman.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from . import kalman


@dataclass
class TrackerParams:
    motion: str = "kalman"          # "kalman" (constant velocity) or "none" (last box)
    two_stage: bool = False         # ByteTrack: match low-score detections to tracks left over
    high_thresh: float = 0.5        # detections at/above take part in the first association
    low_thresh: float = 0.1         # detections below are ignored
    new_track_thresh: float = 0.5   # unmatched detections at/above start a track
    match_iou: float = 0.3          # IoU needed to match (first stage)
    second_match_iou: float = 0.5   # IoU needed in the second stage (low-score detections)
    min_hits: int = 1               # matches before a track is confirmed and gets an id
    max_age: int = 30               # frames a confirmed track survives without a match
    match_class: bool = True        # only match detections of the track's class


@dataclass(slots=True)  # slots: made by the hundred per batch in crowded scenes
class TrackInfo:
    """A track as reported in terminated-track and past-frame meta."""

    source_id: int
    object_id: int
    class_id: int
    age: int                                  # frames since the track started
    first_frame: int
    last_frame: int
    bbox: tuple[float, float, float, float]   # last box, xyxy
    past: list[tuple[int, tuple[float, float, float, float]]] = field(default_factory=list)


@dataclass
class Result:
    """For each input detection: its object id (-1: not confirmed), tracker confidence, age."""

    object_id: np.ndarray
    confidence: np.ndarray
    age: np.ndarray
    new_id: np.ndarray | None = None  # detections whose object id was given in this update
    # confirmed tracks with no detection in a frame: (row in the batch's frame list, object id,
    # class id, predicted xyxy as a tuple, confidence, age)
    shadows: list[tuple[int, int, int, tuple, float, int]] = field(default_factory=list)
    terminated: list[TrackInfo] = field(default_factory=list)
    confirmed: list[TrackInfo] = field(default_factory=list)  # newly confirmed, with their past frames


def batched_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [..., T, 4], b [..., D, 4] xyxy -> IoU [..., T, D] (NaN boxes and empty unions give 0).
    One coordinate at a time, in place: a quarter of the time of pairing [..., 2] slices."""
    ax0, ay0, ax1, ay1 = (a[..., i][..., :, None] for i in range(4))
    bx0, by0, bx1, by1 = (b[..., i][..., None, :] for i in range(4))
    w = np.minimum(ax1, bx1)
    w -= np.maximum(ax0, bx0)
    h = np.minimum(ay1, by1)
    h -= np.maximum(ay0, by0)
    np.fmax(w, 0, out=w)                       # fmax: NaN (padding) -> 0
    np.fmax(h, 0, out=h)
    inter = np.multiply(w, h, out=w)
    union = np.add((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0), out=h)
    union -= inter
    np.fmax(union, 1e-12, out=union)           # an empty or NaN union: 0 / tiny = 0
    return np.divide(inter, union, out=inter)


def _iou_small(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """batched_iou for a few boxes in plain Python floats: the same operations in the same order,
    so the same bits, without a dozen array operations' fixed cost."""
    out = []
    bl = b.tolist()
    for a0, a1, a2, a3 in a.tolist():
        area_a = (a2 - a0) * (a3 - a1)
        row = []
        for b0, b1, b2, b3 in bl:
            w = min(a2, b2) - max(a0, b0)
            h = min(a3, b3) - max(a1, b1)
            inter = max(0.0, w) * max(0.0, h)     # max(0.0, NaN) = 0.0, as np.fmax
            union = area_a + (b2 - b0) * (b3 - b1) - inter
            row.append(inter / max(1e-12, union))
        out.append(row)
    return np.array(out).reshape(len(a), len(b))


def _pad(keys: np.ndarray, n: int, values: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by stream number 0..n-1, every number present: returns (padded [n,M,...],
    index [n,M] into rows or -1). Being dense, the numbers are their own groups' indexes (no
    np.unique: a fifth of an update of 16 streams)."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.searchsorted(sk, np.arange(n))
    rank = np.arange(len(sk)) - start[sk]
    m = int(rank.max()) + 1 if len(rank) else 0
    padded = np.full((n, m, *values.shape[1:]), fill, dtype=values.dtype)
    padded[sk, rank] = values[order]
    index = np.full((n, m), -1, np.int64)
    index[sk, rank] = order
    return padded, index


def _member(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.isin(a, b) for stream keys: a lookup table where they are small non-negative numbers
    (a third of np.isin's time on a batch's tracks), np.isin otherwise."""
    if len(a) and len(b) and min(a.min(), b.min()) >= 0 and max(a.max(), b.max()) < 1 << 16:
        table = np.zeros(int(max(a.max(), b.max())) + 1, bool)
        table[b] = True
        return table[a]
    return np.isin(a, b)


def _classes_differ(t_cls: np.ndarray, d_cls: np.ndarray) -> bool:
    """Whether some track's class can differ from some detection's (both non-empty); when not,
    matching by class changes nothing and the masks across streams are skipped (a detector of one
    class: 4% of a 16-stream update, 7% at 64; one stream's small mask costs less than the test)."""
    c = t_cls[0]
    return bool((t_cls != c).any() or (d_cls != c).any())


DENSE_PAIRS = 4096  # up to this many track x detection pairs, one IoU matrix across streams (measured: faster
#                     to about 8 streams x 9 objects; the padded form beyond)


def _assign_dense(t_key, t_box, t_cls, d_key, d_box, d_cls, min_iou: float, match_class: bool):
    """assign() for a few hundred tracks and detections: one IoU matrix over all of them, pairs
    of different streams zeroed, instead of padding both sides per stream. The same IoU bits and
    the same pairs in the same order as the padded form: unique matches by stream and track row,
    then each stream that needs the Hungarian solver, by stream."""
    iou = batched_iou(t_box, d_box)
    other = t_key[:, None] != d_key[None, :]
    if match_class and _classes_differ(t_cls, d_cls):
        other |= t_cls[:, None] != d_cls[None, :]
    iou[other] = 0.0
    cand = iou >= max(min_iou, 1e-9)
    r, c = np.nonzero(cand)
    if not len(r):
        return r, c, iou[r, c]
    rows_n = np.bincount(r, minlength=len(t_key))
    cols_n = np.bincount(c, minlength=len(d_key))
    ambiguous = np.union1d(t_key[rows_n > 1], d_key[cols_n > 1])
    keep = ~np.isin(t_key[r], ambiguous) if len(ambiguous) else np.ones(len(r), bool)
    r, c = r[keep], c[keep]
    o = np.lexsort((r, t_key[r]))
    rows, cols = [r[o]], [c[o]]
    for k in ambiguous.tolist():
        tr, dr = np.nonzero(t_key == k)[0], np.nonzero(d_key == k)[0]
        sub = iou[np.ix_(tr, dr)]
        r2, c2 = linear_sum_assignment(-sub)
        ok = sub[r2, c2] >= max(min_iou, 1e-9)
        rows.append(tr[r2[ok]])
        cols.append(dr[c2[ok]])
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    return rows_a, cols_a, iou[rows_a, cols_a]


def _rows(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """a[rows], without the copy when rows selects every row (in order: rows come from nonzero)."""
    return a if len(rows) == len(a) else a[rows]


def _unique_pairs(r: np.ndarray, c: np.ndarray) -> bool:
    """True when no row and no column of a candidate set appears twice."""
    if len(r) < 2:
        return True
    rl, cl = r.tolist(), c.tolist()
    return len(set(rl)) == len(rl) and len(set(cl)) == len(cl)


def assign(t_key: np.ndarray, t_box: np.ndarray, t_cls: np.ndarray, d_key: np.ndarray, d_box: np.ndarray,
           d_cls: np.ndarray, min_iou: float, match_class: bool, one_stream: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches tracks to detections of the same stream by IoU. Returns (track rows, det rows, iou).
    `one_stream`: the caller knows every row is of one stream (no padding needed)."""
    if one_stream:
        iou = batched_iou(t_box, d_box) if len(t_box) * len(d_box) > 4 else _iou_small(t_box, d_box)
        if match_class:
            iou[t_cls[:, None] != d_cls[None, :]] = 0.0
        cand = iou >= max(min_iou, 1e-9)
        r, c = np.nonzero(cand)
        if not _unique_pairs(r, c):
            r, c = linear_sum_assignment(-iou)
            ok = cand[r, c]
            r, c = r[ok], c[ok]
        return r, c, iou[r, c]
    if not len(t_key) or not len(d_key):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if len(t_key) * len(d_key) <= DENSE_PAIRS:
        return _assign_dense(t_key, t_box, t_cls, d_key, d_box, d_cls, min_iou, match_class)
    keys = np.union1d(t_key, d_key)
    tk, dk = np.searchsorted(keys, t_key), np.searchsorted(keys, d_key)
    # pad both sides over the same stream axis
    n = len(keys)
    tp, ti = _pad(np.concatenate([tk, np.arange(n)]), n, np.concatenate([t_box, np.full((n, 4), np.nan)]), np.nan)
    dp, di = _pad(np.concatenate([dk, np.arange(n)]), n, np.concatenate([d_box, np.full((n, 4), np.nan)]), np.nan)
    ti[ti >= len(t_key)] = -1
    di[di >= len(d_key)] = -1
    iou = batched_iou(tp, dp)
    if match_class and _classes_differ(t_cls, d_cls):
        tc = np.where(ti >= 0, t_cls[np.clip(ti, 0, None)], -1)
        dc = np.where(di >= 0, d_cls[np.clip(di, 0, None)], -2)
        iou = np.where(tc[:, :, None] == dc[:, None, :], iou, 0.0)
    cand = iou >= max(min_iou, 1e-9)
    ambiguous = (cand.sum(2) > 1).any(1) | (cand.sum(1) > 1).any(1)
    clear = np.nonzero(~ambiguous)[0]  # streams whose candidates pair off one to one (none when crowded)
    s, r, c = np.nonzero(cand[clear])  # in the same order as over the whole array
    s = clear[s]
    amb = np.nonzero(ambiguous)[0]
    if not len(amb):
        return ti[s, r], di[s, c], iou[s, r, c]
    # the streams that need the Hungarian solver, one call each; their pairs are then read in
    # one step (the same pairs in the same order as stream by stream)
    solved = [linear_sum_assignment(-iou[k]) for k in amb.tolist()]
    k2 = np.repeat(amb, [len(r2) for r2, _ in solved])
    r2 = np.concatenate([r2 for r2, _ in solved])
    c2 = np.concatenate([c2 for _, c2 in solved])
    ok = cand[k2, r2, c2]
    k2, r2, c2 = k2[ok], r2[ok], c2[ok]
    return (np.concatenate([ti[s, r], ti[k2, r2]]), np.concatenate([di[s, c], di[k2, c2]]),
            np.concatenate([iou[s, r, c], iou[k2, r2, c2]]))


class TrackerCore:
    """All tracks of all streams. Not thread-safe; the tracker element owns one."""

    _FIELDS = ("key", "oid", "uid", "cls", "hits", "miss", "age", "first", "last", "box", "mean", "cov", "conf")

    def __init__(self, params: TrackerParams, id_source=None, *, unique_ids: bool = False,
                 report_missed: bool = False):
        """Object ids count per stream (key) from 0, so a stream's ids do not depend on which other
        streams share its batches; unique_ids puts the key in the upper 32 bits (ids unique across
        streams, like DeepStream's useUniqueID). `id_source` (an iterator) overrides both.
        report_missed: Result.shadows for frames the detector ran on too (confirmed tracks it
        missed); else only for frames it skipped, where they become objects."""
        self.p = params
        self._next_uid = 0
        self._ids = id_source
        self._unique = unique_ids
        self._counters: dict[int, int] = {}
        self.frame_count = 0
        self._past: dict[int, list] = {}  # uid -> [(frame, box)] while tentative (for past-frame meta)
        self.report_missed = report_missed
        self.reset()

    def _new_id(self, key: int) -> int:
        if self._ids is not None:
            return next(self._ids)
        n = self._counters.get(key, 0)
        self._counters[key] = n + 1
        return (key << 32 | n) if self._unique else n

    def reset(self) -> None:
        """Forgets every track; id counters keep counting, so ids are never reused."""
        self.key = np.zeros(0, np.int64)      # stream key
        self.oid = np.zeros(0, np.int64)      # object id, -1 while tentative
        self.uid = np.zeros(0, np.int64)      # internal id
        self.cls = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.miss = np.zeros(0, np.int64)     # detected frames since the last match
        self.age = np.zeros(0, np.int64)      # frames since birth
        self.first = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)     # frame number of the last match
        self.box = np.zeros((0, 4))           # last box (xyxy)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 4, 3))   # per coordinate: see kalman.py
        self.conf = np.zeros(0)
        self._past.clear()

    def __len__(self) -> int:
        return len(self.key)

    def _keep(self, mask: np.ndarray) -> None:
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f)[mask])

    def _append(self, **cols: np.ndarray) -> None:
        for f in self._FIELDS:
            setattr(self, f, np.concatenate([getattr(self, f), cols[f]]))

    def predicted_boxes(self, rows: np.ndarray | slice) -> np.ndarray:
        if self.p.motion == "kalman":
            return kalman.xyah_to_xyxy(self.mean[rows, :4])
        return self.box[rows]

    def update(self, frame_keys: np.ndarray, frame_nums: np.ndarray, detected: np.ndarray,
               d_frame: np.ndarray, d_box: np.ndarray, d_score: np.ndarray, d_cls: np.ndarray) -> Result:
        """One step for a set of frames of distinct streams.

        frame_keys/frame_nums/detected: per frame; d_*: detections with d_frame = their frame's
        row. Frames with detected=False (the detector skipped them) only advance the tracks."""
        p = self.p
        kalman_on = p.motion == "kalman"
        nd = len(d_box)
        object_id = np.empty(nd, np.int64)
        object_id.fill(-1)
        res = Result(object_id, np.zeros(nd), np.zeros(nd, np.int64), np.zeros(nd, bool))
        self.frame_count += 1
        n_tracks = len(self.key)
        one = len(frame_keys) == 1
        in_batch = self.key == frame_keys[0] if one else _member(self.key, frame_keys)
        if n_tracks:
            if np.count_nonzero(in_batch) == n_tracks:  # all tracks' streams are in the batch: in place
                self.age += 1
                if kalman_on:
                    kalman.predict(self.mean, self.cov)
            else:
                rows = in_batch.nonzero()[0]
                self.age[rows] += 1
                if kalman_on and len(rows):
                    m, c = self.mean[rows], self.cov[rows]
                    kalman.predict(m, c)
                    self.mean[rows], self.cov[rows] = m, c
        live = in_batch if np.count_nonzero(detected) == len(detected) else _member(self.key, frame_keys[detected])
        d_key = frame_keys[d_frame]
        high = d_score >= p.low_thresh                 # detections taking part at all ...
        if p.two_stage:                                # ... split by score for ByteTrack
            low = high.copy()
            high &= d_score >= p.high_thresh
            low &= ~high
        matched_t = np.zeros(n_tracks, bool)
        matched_d = np.zeros(nd, bool)
        pairs_t, pairs_d, pairs_iou = [], [], []

        pred = []  # every track's predicted box, made once when first needed

        def stage(t_mask: np.ndarray, d_mask: np.ndarray, min_iou: float) -> None:
            trows = (t_mask & ~matched_t).nonzero()[0]
            if not len(trows):
                return
            drows = (d_mask & ~matched_d).nonzero()[0]
            if not len(drows):
                return
            if not pred:
                pred.append(self.predicted_boxes(slice(None)))
            r, c, v = assign(_rows(self.key, trows), _rows(pred[0], trows), _rows(self.cls, trows),
                             _rows(d_key, drows), _rows(d_box, drows), _rows(d_cls, drows), min_iou,
                             p.match_class, one_stream=one)
            if len(r):
                matched_t[trows[r]] = True
                matched_d[drows[c]] = True
                pairs_t.append(trows[r]), pairs_d.append(drows[c]), pairs_iou.append(v)

        if n_tracks and nd:
            confirmed = self.oid >= 0
            live_confirmed = live & confirmed
            stage(live_confirmed, high, p.match_iou)
            if p.two_stage and np.count_nonzero(low):
                stage(live_confirmed & (self.miss == 0), low, p.second_match_iou)
            if np.count_nonzero(confirmed) < n_tracks:
                stage(live & ~confirmed, high, p.match_iou)

        if pairs_t:
            t, d, v = (pairs_t[0], pairs_d[0], pairs_iou[0]) if len(pairs_t) == 1 else \
                (np.concatenate(pairs_t), np.concatenate(pairs_d), np.concatenate(pairs_iou))
            # one stream, every track matched in one stage: t is 0..n-1 in order, so work in place
            at = slice(None) if one and len(t) == n_tracks and len(pairs_t) == 1 else t
            if kalman_on:
                m, c = self.mean[at], self.cov[at]
                kalman.update(m, c, kalman.xyxy_to_xyah(d_box[d]))
                if at is t:
                    self.mean[t], self.cov[t] = m, c
            self.box[at] = d_box[d]
            self.hits[at] += 1
            self.miss[at] = 0
            self.conf[at] = v
            self.last[at] = frame_nums[d_frame[d]]
            oid = self.oid[at]
            tentative = oid < 0
            if np.count_nonzero(tentative):
                newly = tentative & (self.hits[t] >= p.min_hits)
                for row in t[newly].tolist():
                    self.oid[row] = self._new_id(int(self.key[row]))
                    res.confirmed.append(self._info(row, self._past.pop(int(self.uid[row]), [])))
                res.new_id[d[newly]] = True
                still = tentative & ~newly
                for row, drow in zip(t[still].tolist(), d[still].tolist()):
                    self._past.setdefault(int(self.uid[row]), []).append(
                        (int(frame_nums[d_frame[drow]]), tuple(float(x) for x in d_box[drow])))
                oid = self.oid[t]
                ok = oid >= 0
                res.object_id[d[ok]] = oid[ok]
            else:
                res.object_id[d] = oid
            res.confidence[d] = v
            res.age[d] = self.age[t]

        if n_tracks:
            self._misses(in_batch, live, matched_t, frame_keys, res)

        # unmatched detections start tracks
        new = high & ~matched_d if p.new_track_thresh <= p.low_thresh else \
            high & ~matched_d & (d_score >= p.new_track_thresh)
        new_rows = new.nonzero()[0]
        if len(new_rows):
            k = len(new_rows)
            boxes = d_box[new_rows].astype(np.float64)
            mean, cov = kalman.initiate(kalman.xyxy_to_xyah(boxes)) if kalman_on else \
                (np.zeros((k, 8)), np.zeros((k, 4, 3)))
            oid = np.full(k, -1, np.int64)
            if p.min_hits <= 1:
                oid = np.fromiter((self._new_id(key) for key in d_key[new_rows].tolist()), np.int64, k)
            uid = np.arange(self._next_uid, self._next_uid + k)
            self._next_uid += k
            fn = frame_nums[d_frame[new_rows]]
            self._append(key=d_key[new_rows], oid=oid, uid=uid, cls=d_cls[new_rows].astype(np.int64),
                         hits=np.ones(k, np.int64), miss=np.zeros(k, np.int64), age=np.zeros(k, np.int64),
                         first=fn, last=fn, box=boxes, mean=mean, cov=cov, conf=np.ones(k))
            res.object_id[new_rows] = oid
            res.new_id[new_rows] = oid >= 0
            res.confidence[new_rows] = 1.0
            if p.min_hits > 1:
                for u, f, b in zip(uid.tolist(), fn.tolist(), boxes.tolist()):
                    self._past[u] = [(f, tuple(b))]
        return res

    def _misses(self, in_batch: np.ndarray, live: np.ndarray, matched_t: np.ndarray, frame_keys: np.ndarray,
                res: Result) -> None:
        """Tracks of this batch's streams left without a detection: a miss where the detector ran
        (too many, or still tentative: gone), a shadow object where the track is confirmed."""
        unmatched = in_batch & ~matched_t
        if not np.count_nonzero(unmatched):
            return
        missed = unmatched & live  # only frames the detector ran on count
        gone = None
        if np.count_nonzero(missed):
            self.miss[missed] += 1
            gone = missed & ((self.oid < 0) | (self.miss > self.p.max_age))
            if np.count_nonzero(gone):
                res.terminated += self._infos((gone & (self.oid >= 0)).nonzero()[0])
                for u in self.uid[gone & (self.oid < 0)].tolist():
                    self._past.pop(u, None)
                unmatched = unmatched & ~gone
            else:
                gone = None
        shadow = unmatched & (self.oid >= 0)
        if not self.report_missed:
            shadow &= ~live
        if np.count_nonzero(shadow):
            row_of_key = dict(zip(frame_keys.tolist(), range(len(frame_keys))))
            rows = shadow.nonzero()[0]
            conf = 0.5 ** np.maximum(self.miss[rows], 1).astype(np.float64)
            res.shadows += [(row_of_key[k], oid, c, tuple(b), cf, age) for k, oid, c, b, cf, age in zip(
                self.key[rows].tolist(), self.oid[rows].tolist(), self.cls[rows].tolist(),
                self.predicted_boxes(rows).tolist(), conf.tolist(), self.age[rows].tolist())]
        if gone is not None:
            self._keep(~gone)

    def _info(self, row: int, past: list | None = None) -> TrackInfo:
        return TrackInfo(int(self.key[row]), int(self.oid[row]), int(self.cls[row]), int(self.age[row]),
                         int(self.first[row]), int(self.last[row]), tuple(float(x) for x in self.box[row]),
                         past or [])

    def _infos(self, rows: np.ndarray) -> list[TrackInfo]:
        """_info for many rows, column by column."""
        return [TrackInfo(*v, tuple(b), []) for *v, b in zip(
            self.key[rows].tolist(), self.oid[rows].tolist(), self.cls[rows].tolist(), self.age[rows].tolist(),
            self.first[rows].tolist(), self.last[rows].tolist(), self.box[rows].tolist())]

    def drop_stream(self, key: int) -> list[TrackInfo]:
        mask = self.key == key
        out = self._infos((mask & (self.oid >= 0)).nonzero()[0])
        self._keep(~mask)
        return out
