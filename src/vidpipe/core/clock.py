"""Pacing to a stream's own timestamps (live sources, real-time network outputs)."""
from __future__ import annotations

import threading
import time


class Pacer:
    """`wait(pts)` returns when `pts` seconds of stream time have passed since the first call.
    A jump back (loop) or far ahead (gap) restarts the clock instead of sleeping."""

    def __init__(self, max_ahead_s: float = 2.0) -> None:
        self.t0: float | None = None
        self.p0 = 0.0
        self.max_ahead = max_ahead_s

    def wait(self, pts_seconds: float, abort: threading.Event) -> None:
        now = time.monotonic()
        if self.t0 is None or pts_seconds < self.p0:
            self.t0, self.p0 = now, pts_seconds
            return
        delay = (pts_seconds - self.p0) - (now - self.t0)
        if delay > self.max_ahead:
            self.t0, self.p0 = now, pts_seconds
            return
        if delay > 0:
            abort.wait(delay)
