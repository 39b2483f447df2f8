"""The tracking engine: every track of every stream in one set of arrays.

One `update()` handles a whole batch (frames of many streams): Kalman prediction and
correction, IoU matrices and assignment are computed for all streams at once (IoU on arrays
padded per stream, [streams, tracks, detections]). The Hungarian solver runs only for streams
where some track or detection has more than one candidate; everywhere else the match is unique
and read off the candidate mask directly.
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


@dataclass
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
    # confirmed tracks with no detection in a frame: (row in the batch's frame list, object id,
    # class id, predicted xyxy, confidence, age)
    shadows: list[tuple[int, int, int, np.ndarray, float, int]] = field(default_factory=list)
    terminated: list[TrackInfo] = field(default_factory=list)
    confirmed: list[TrackInfo] = field(default_factory=list)  # newly confirmed, with their past frames


def batched_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [S,T,4], b [S,D,4] xyxy -> IoU [S,T,D] (NaN boxes give 0)."""
    ix = np.minimum(a[:, :, None, 2], b[:, None, :, 2]) - np.maximum(a[:, :, None, 0], b[:, None, :, 0])
    iy = np.minimum(a[:, :, None, 3], b[:, None, :, 3]) - np.maximum(a[:, :, None, 1], b[:, None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    aa = (a[:, :, 2] - a[:, :, 0]) * (a[:, :, 3] - a[:, :, 1])
    ab = (b[:, :, 2] - b[:, :, 0]) * (b[:, :, 3] - b[:, :, 1])
    union = aa[:, :, None] + ab[:, None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / union
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _pad(keys: np.ndarray, values: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group rows by integer key: returns (padded [S,M,...], index [S,M] into rows or -1, unique keys)."""
    uniq, inv = np.unique(keys, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    sk = inv[order]
    start = np.searchsorted(sk, np.arange(len(uniq)))
    rank = np.arange(len(sk)) - start[sk]
    m = int(rank.max()) + 1 if len(rank) else 0
    padded = np.full((len(uniq), m, *values.shape[1:]), fill, dtype=values.dtype)
    padded[sk, rank] = values[order]
    index = np.full((len(uniq), m), -1, np.int64)
    index[sk, rank] = order
    return padded, index, uniq


def assign(t_key: np.ndarray, t_box: np.ndarray, t_cls: np.ndarray, d_key: np.ndarray, d_box: np.ndarray,
           d_cls: np.ndarray, min_iou: float, match_class: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches tracks to detections of the same stream by IoU. Returns (track rows, det rows, iou)."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if not len(t_key) or not len(d_key):
        return empty
    if t_key.min() == t_key.max() == d_key.min() == d_key.max():  # one stream: no padding needed
        iou = batched_iou(t_box[None], d_box[None])[0]
        if match_class:
            iou = np.where(t_cls[:, None] == d_cls[None, :], iou, 0.0)
        cand = iou >= max(min_iou, 1e-9)
        if (cand.sum(1) > 1).any() or (cand.sum(0) > 1).any():
            r, c = linear_sum_assignment(-iou)
            ok = cand[r, c]
            r, c = r[ok], c[ok]
        else:
            r, c = np.nonzero(cand)
        return r, c, iou[r, c]
    keys = np.union1d(t_key, d_key)
    tk, dk = np.searchsorted(keys, t_key), np.searchsorted(keys, d_key)
    # pad both sides over the same stream axis
    n = len(keys)
    tp, ti, _ = _pad(np.concatenate([tk, np.arange(n)]), np.concatenate([t_box, np.full((n, 4), np.nan)]), np.nan)
    dp, di, _ = _pad(np.concatenate([dk, np.arange(n)]), np.concatenate([d_box, np.full((n, 4), np.nan)]), np.nan)
    ti[ti >= len(t_key)] = -1
    di[di >= len(d_key)] = -1
    iou = batched_iou(tp, dp)
    if match_class:
        tc = np.where(ti >= 0, t_cls[np.clip(ti, 0, None)], -1)
        dc = np.where(di >= 0, d_cls[np.clip(di, 0, None)], -2)
        iou = np.where(tc[:, :, None] == dc[:, None, :], iou, 0.0)
    cand = iou >= max(min_iou, 1e-9)
    ambiguous = (cand.sum(2) > 1).any(1) | (cand.sum(1) > 1).any(1)
    s, r, c = np.nonzero(cand & ~ambiguous[:, None, None])
    rows, cols, ious = [ti[s, r]], [di[s, c]], [iou[s, r, c]]
    for k in np.nonzero(ambiguous)[0]:
        r2, c2 = linear_sum_assignment(-iou[k])
        ok = cand[k, r2, c2]
        rows.append(ti[k, r2[ok]])
        cols.append(di[k, c2[ok]])
        ious.append(iou[k, r2[ok], c2[ok]])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(ious)


class TrackerCore:
    """All tracks of all streams. Not thread-safe; the tracker element owns one."""

    _FIELDS = ("key", "oid", "uid", "cls", "hits", "miss", "age", "first", "last", "box", "mean", "cov", "conf")

    def __init__(self, params: TrackerParams, id_source=None, *, unique_ids: bool = False):
        """Object ids count per stream (key) from 0, so a stream's ids do not depend on which other
        streams share its batches; unique_ids puts the key in the upper 32 bits (ids unique across
        streams, like DeepStream's useUniqueID). `id_source` (an iterator) overrides both."""
        self.p = params
        self._next_uid = 0
        self._ids = id_source
        self._unique = unique_ids
        self._counters: dict[int, int] = {}
        self.frame_count = 0
        self._past: dict[int, list] = {}  # uid -> [(frame, box)] while tentative (for past-frame meta)
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
        self.cov = np.zeros((0, 8, 8))
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

    def predicted_boxes(self, rows: np.ndarray) -> np.ndarray:
        if self.p.motion == "kalman":
            return kalman.xyah_to_xyxy(self.mean[rows, :4])
        return self.box[rows]

    def update(self, frame_keys: np.ndarray, frame_nums: np.ndarray, detected: np.ndarray,
               d_frame: np.ndarray, d_box: np.ndarray, d_score: np.ndarray, d_cls: np.ndarray) -> Result:
        """One step for a set of frames of distinct streams.

        frame_keys/frame_nums/detected: per frame; d_*: detections with d_frame = their frame's
        row. Frames with detected=False (the detector skipped them) only advance the tracks."""
        p = self.p
        nd = len(d_box)
        res = Result(np.full(nd, -1, np.int64), np.zeros(nd), np.zeros(nd, np.int64))
        self.frame_count += 1
        in_batch = self.key == frame_keys[0] if len(frame_keys) == 1 else np.isin(self.key, frame_keys)
        row_of_key = dict(zip(frame_keys.tolist(), range(len(frame_keys))))
        if in_batch.any():
            self.age[in_batch] += 1
            if p.motion == "kalman":
                m, c = self.mean[in_batch], self.cov[in_batch]
                kalman.predict(m, c)
                self.mean[in_batch], self.cov[in_batch] = m, c
        det_keys = frame_keys[detected]
        d_key = frame_keys[d_frame] if nd else np.zeros(0, np.int64)
        live = in_batch.copy() if len(det_keys) == len(frame_keys) else np.isin(self.key, det_keys)
        keep_det = d_score >= p.low_thresh
        high = keep_det & (d_score >= p.high_thresh) if p.two_stage else keep_det
        low = keep_det & ~high if p.two_stage else np.zeros(nd, bool)
        matched_t = np.zeros(len(self), bool)
        matched_d = np.zeros(nd, bool)
        pairs_t, pairs_d, pairs_iou = [], [], []

        def stage(t_mask: np.ndarray, d_mask: np.ndarray, min_iou: float) -> None:
            trows = np.nonzero(t_mask & ~matched_t)[0]
            drows = np.nonzero(d_mask & ~matched_d)[0]
            if not len(trows) or not len(drows):
                return
            r, c, v = assign(self.key[trows], self.predicted_boxes(trows), self.cls[trows], d_key[drows],
                             d_box[drows], d_cls[drows], min_iou, p.match_class)
            matched_t[trows[r]] = True
            matched_d[drows[c]] = True
            pairs_t.append(trows[r]), pairs_d.append(drows[c]), pairs_iou.append(v)

        confirmed = self.oid >= 0
        stage(live & confirmed, high, p.match_iou)
        if p.two_stage:
            stage(live & confirmed & (self.miss == 0), low, p.second_match_iou)
        stage(live & ~confirmed, high, p.match_iou)

        if pairs_t:
            t = np.concatenate(pairs_t)
            d = np.concatenate(pairs_d)
            v = np.concatenate(pairs_iou)
            if p.motion == "kalman":
                self.mean[t], self.cov[t] = kalman.update(self.mean[t], self.cov[t], kalman.xyxy_to_xyah(d_box[d]))
            self.box[t] = d_box[d]
            self.hits[t] += 1
            self.miss[t] = 0
            self.conf[t] = v
            self.last[t] = frame_nums[d_frame[d]]
            newly = (self.oid[t] < 0) & (self.hits[t] >= p.min_hits)
            for row in t[newly].tolist():
                self.oid[row] = self._new_id(int(self.key[row]))
            for row in t[newly].tolist():
                res.confirmed.append(self._info(row, self._past.pop(int(self.uid[row]), [])))
            for row, drow in zip(t[~newly & (self.oid[t] < 0)].tolist(), d[~newly & (self.oid[t] < 0)].tolist()):
                self._past.setdefault(int(self.uid[row]), []).append(
                    (int(frame_nums[d_frame[drow]]), tuple(float(x) for x in d_box[drow])))
            ok = self.oid[t] >= 0
            res.object_id[d[ok]] = self.oid[t[ok]]
            res.confidence[d] = v
            res.age[d] = self.age[t]

        # unmatched detections start tracks
        new = ~matched_d & keep_det & (d_score >= p.new_track_thresh)
        if p.two_stage:
            new &= high
        new_rows = np.nonzero(new)[0]
        if len(new_rows):
            k = len(new_rows)
            boxes = d_box[new_rows].astype(np.float64)
            mean, cov = kalman.initiate(kalman.xyxy_to_xyah(boxes)) if p.motion == "kalman" else \
                (np.zeros((k, 8)), np.zeros((k, 8, 8)))
            oid = np.full(k, -1, np.int64)
            if p.min_hits <= 1:
                oid = np.fromiter((self._new_id(key) for key in d_key[new_rows].tolist()), np.int64, k)
            uid = np.arange(self._next_uid, self._next_uid + k)
            self._next_uid += k
            fn = frame_nums[d_frame[new_rows]]
            self._append(key=d_key[new_rows], oid=oid, uid=uid, cls=d_cls[new_rows].astype(np.int64),
                         hits=np.ones(k, np.int64), miss=np.zeros(k, np.int64), age=np.zeros(k, np.int64),
                         first=fn, last=fn, box=boxes, mean=mean, cov=cov, conf=np.ones(k))
            matched_t = np.concatenate([matched_t, np.ones(k, bool)])
            live = np.concatenate([live, np.zeros(k, bool)])
            in_batch = np.concatenate([in_batch, np.ones(k, bool)])
            res.object_id[new_rows] = oid
            res.confidence[new_rows] = 1.0
            if p.min_hits > 1:
                for u, f, b in zip(uid.tolist(), fn.tolist(), boxes.tolist()):
                    self._past[u] = [(f, tuple(b))]

        # misses: only frames the detector ran on count
        missed = live & ~matched_t
        self.miss[missed] += 1
        gone = missed & ((self.oid < 0) | (self.miss > p.max_age))
        if gone.any():
            for row in np.nonzero(gone & (self.oid >= 0))[0]:
                res.terminated.append(self._info(row))
            for u in self.uid[gone & (self.oid < 0)].tolist():
                self._past.pop(u, None)
        # confirmed tracks with no detection this frame: report their predicted boxes
        shadow = in_batch & ~gone & ~matched_t & (self.oid >= 0)
        if shadow.any():
            rows = np.nonzero(shadow)[0]
            boxes = self.predicted_boxes(rows)
            for row, b in zip(rows.tolist(), boxes):
                res.shadows.append((row_of_key[int(self.key[row])], int(self.oid[row]), int(self.cls[row]), b,
                                    float(0.5 ** max(int(self.miss[row]), 1)), int(self.age[row])))
        if gone.any():
            self._keep(~gone)
        return res

    def _info(self, row: int, past: list | None = None) -> TrackInfo:
        return TrackInfo(int(self.key[row]), int(self.oid[row]), int(self.cls[row]), int(self.age[row]),
                         int(self.first[row]), int(self.last[row]), tuple(float(x) for x in self.box[row]),
                         past or [])

    def drop_stream(self, key: int) -> list[TrackInfo]:
        mask = self.key == key
        out = [self._info(r) for r in np.nonzero(mask & (self.oid >= 0))[0]]
        self._keep(~mask)
        return out
