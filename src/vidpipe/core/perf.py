"""Per-stream frame counting and FPS (DeepStream's PERF_DATA), from a probe on any pad."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from .element import Pad
from .meta import Batch


class PerfMonitor:
    """Counts frames per source id crossing `pad`; `snapshot()` gives FPS since the last call
    and since the start; `on_frames` (if set) gets the number of frames of each batch."""

    def __init__(self, pad: Pad, on_frames: Callable[[int], Any] | None = None):
        self.total: dict[int, int] = defaultdict(int)
        self._last: dict[int, int] = defaultdict(int)
        self.start = self._t_last = time.perf_counter()
        self.first_frame_at: float | None = None
        self.on_frames = on_frames
        self.objects: dict[str, int] = defaultdict(int)
        self._lat_sum: dict[int, float] = defaultdict(float)
        self._lat_n: dict[int, int] = defaultdict(int)
        self.frames_with: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        pad.add_probe(self._probe)

    def _probe(self, pad: Pad, batch: Batch) -> None:
        with self._lock:
            if self.first_frame_at is None:
                self.first_frame_at = time.perf_counter()
            now = time.monotonic()
            for f in batch.frames:
                self.total[f.source_id] += 1
                self._lat_sum[f.source_id] += now - f.created_at
                self._lat_n[f.source_id] += 1
            objs = batch.objects
            if len(objs):  # objects per name, and frames with at least one, from the columns
                names = np.asarray([lab or str(c) for lab, c in zip(objs.label.tolist(), objs.class_id.tolist())])
                uniq, inv = np.unique(names, return_inverse=True)
                for name, n in zip(uniq.tolist(), np.bincount(inv).tolist()):
                    self.objects[name] += n
                per_frame = np.unique(np.stack([objs.frame, inv]), axis=1)[1]
                for name, n in zip(uniq.tolist(), np.bincount(per_frame, minlength=len(uniq)).tolist()):
                    self.frames_with[name] += n
        if self.on_frames is not None and batch.frames:
            self.on_frames(len(batch.frames))

    def snapshot(self) -> dict[int, tuple[float, float, float]]:
        """source id -> (FPS over the last interval, FPS since start, mean latency in ms over the
        last interval: from the source making a frame to the frame crossing this pad)."""
        now = time.perf_counter()
        with self._lock:
            dt = max(now - self._t_last, 1e-9)
            total_dt = max(now - self.start, 1e-9)
            out = {sid: ((n - self._last[sid]) / dt, n / total_dt,
                         1000 * self._lat_sum[sid] / self._lat_n[sid] if self._lat_n[sid] else 0.0)
                   for sid, n in sorted(self.total.items())}
            self._last = defaultdict(int, self.total)
            self._lat_sum.clear()
            self._lat_n.clear()
            self._t_last = now
        return out

    @property
    def frames(self) -> int:
        return sum(self.total.values())

    def fps(self) -> float:
        return self.frames / max(time.perf_counter() - self.start, 1e-9)
