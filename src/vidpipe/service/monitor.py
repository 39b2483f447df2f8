"""What the console and /metrics read: per-stream frames, rolling FPS and latency from a probe
on one pad (the "tap", after inference and tracking), the latest frame of each stream that a
viewer watches (scaled down, boxes drawn, JPEG-encoded once for every viewer), and recent events."""
from __future__ import annotations

import bisect
import functools
import itertools
import json
import threading
import time
from collections import deque
from typing import Any

import numpy as np

WINDOW_S = 5.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StreamStats:
    __slots__ = ("frames", "hist", "lat_sum", "recent")

    def __init__(self):
        self.frames = 0
        self.recent: deque[tuple[float, float]] = deque()   # (monotonic time, latency s) over WINDOW_S
        self.hist = [0] * (len(LATENCY_BUCKETS) + 1)         # cumulative counts come at scrape time
        self.lat_sum = 0.0


class Snapshot:
    """One viewer-ready JPEG of a stream, with the wall-clock time its frame was made and, for
    views that draw the boxes themselves, the objects as JSON [[x1, y1, x2, y2, label], ...]."""
    __slots__ = ("captured", "jpeg", "objects", "seq")

    def __init__(self, jpeg: bytes, captured: float, seq: int, objects: str = ""):
        self.jpeg, self.captured, self.seq, self.objects = jpeg, captured, seq, objects


class Monitor:
    def __init__(self, max_fps: float = 10.0, width: int = 384, quality: int = 70):
        self.streams: dict[int, StreamStats] = {}
        self.max_fps, self.width, self.quality = max_fps, width, quality
        self.events: deque[dict[str, Any]] = deque(maxlen=500)
        self._event_seq = itertools.count(1)
        self._crowded: dict[tuple[int, str], bool] = {}
        self._lock = threading.Lock()
        self.viewers: dict[int, int] = {}                   # source id -> open live views
        self.plain_viewers: dict[int, int] = {}             # ... of which draw the boxes themselves
        self._pending: dict[int, tuple] = {}                # source id -> (small RGB, boxes, labels, captured)
        self._due: dict[int, float] = {}                    # source id -> when its next live frame is due
        self.latest: dict[tuple[int, bool], Snapshot] = {}  # (source id, boxes drawn) -> newest JPEG
        self._seq = itertools.count(1)
        self._work = threading.Condition()
        self._new = threading.Condition()
        self._stop = False
        self.encode_s = 0.0
        self.on_snapshot = None                             # callback(source id) after each new JPEG
        self.encoded = 0
        self._thread = threading.Thread(target=self._encode_loop, name="vidpipe:console-jpeg", daemon=True)
        self._thread.start()

    # -- the probe (pipeline thread) -------------------------------------------------------------
    def probe(self, pad: Any, batch: Any) -> None:
        now = time.monotonic()
        wall_minus_mono = time.time() - now
        with self._lock:
            for f in batch.frames:
                st = self.streams.get(f.source_id)
                if st is None:
                    st = self.streams[f.source_id] = StreamStats()
                lat = now - f.created_at
                st.frames += 1
                st.recent.append((now, lat))
                while st.recent and st.recent[0][0] < now - WINDOW_S:
                    st.recent.popleft()
                st.lat_sum += lat
                st.hist[bisect.bisect_left(LATENCY_BUCKETS, lat)] += 1   # le buckets: lat <= bound
                an = f.meta.user_meta.get("analytics")
                if an is not None:
                    self._analytics_events(f.source_id, an)
            payloads = batch.user_meta.get("payloads") if hasattr(batch, "user_meta") else None
            if payloads:
                for p in payloads[-3:]:
                    self._event("message", f"{p.data[:160]}", source_id=p.source_id)
        if not self.viewers:
            return
        step = 1.0 / self.max_fps
        for f in batch.frames:
            sid = f.source_id
            due = self._due.get(sid, 0.0)      # at most max_fps on average; a frame a little early still counts
            if not self.viewers.get(sid) or now < due - 0.25 * step:
                continue
            self._due[sid] = max(due, now - step) + step
            self._grab(f, f.created_at + wall_minus_mono)

    def _analytics_events(self, sid: int, an: Any) -> None:
        """Line crossings of this frame, and overcrowding as it starts and ends (lock held)."""
        for line, n in an.obj_lc_curr_cnt.items():
            if n:
                self._event("analytics", f"stream {sid}: {n} crossed {line} (total {an.obj_lc_cum_cnt.get(line, 0)})",
                            source_id=sid)
        for line, n in an.lc_curr_against.items():
            if n:
                self._event("analytics", f"stream {sid}: {n} crossed {line} the other way "
                            f"(total {an.lc_cum_against.get(line, 0)})", source_id=sid)
        for roi, crowded in an.oc_status.items():
            key = (sid, roi)
            if crowded != self._crowded.get(key, False):
                self._crowded[key] = crowded
                self._event("analytics", f"stream {sid}: {roi} " + (f"overcrowded ({an.oc_count.get(roi, 0)} objects)"
                                                                     if crowded else "no longer overcrowded"),
                            source_id=sid)

    def _grab(self, f: Any, captured: float) -> None:
        import cv2
        img = f.image
        if hasattr(img, "cpu"):                          # a CUDA frame: one scaled copy to the host
            img = img.cpu().numpy()
        h, w = img.shape[:2]
        s = min(1.0, self.width / w)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR) \
            if s < 1.0 else img.copy()
        objs = f.objects
        boxes = (np.asarray(objs.xyxy, np.float32) * s).astype(np.int32) if len(objs) else np.zeros((0, 4), np.int32)
        ids = objs.object_id.tolist() if len(objs) else []
        labels = [f"{lab or c}{'' if i < 0 else f' {i}'}" for lab, c, i in
                  zip(objs.labels, objs.class_id.tolist(), ids)] if len(objs) else []
        with self._work:
            self._pending[f.source_id] = (small, boxes, labels, captured)
            self._work.notify()

    # -- the encoder thread --------------------------------------------------------------------
    def _encode_loop(self) -> None:
        import cv2
        while True:
            with self._work:
                while not self._pending and not self._stop:
                    self._work.wait(0.5)
                if self._stop:
                    return
                jobs, self._pending = self._pending, {}
            for sid, (img, boxes, labels, captured) in jobs.items():
                t0 = time.perf_counter()
                bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
                made = []
                if self.plain_viewers.get(sid):       # the console draws the boxes itself, crisp at any size
                    objs = json.dumps([[*b, lab] for b, lab in zip(boxes.tolist(), labels)], separators=(",", ":"))
                    made.append((False, self._jpeg(bgr), objs))
                if self.viewers.get(sid, 0) > self.plain_viewers.get(sid, 0):
                    for (x1, y1, x2, y2), lab in zip(boxes.tolist(), labels):
                        color = _color(lab.split(" ")[0])
                        cv2.rectangle(bgr, (x1, y1), (x2, y2), color, 2)
                        (tw, th), _ = cv2.getTextSize(lab, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
                        ty = max(th + 4, y1)
                        cv2.rectangle(bgr, (x1, ty - th - 4), (x1 + tw + 4, ty), color, -1)
                        cv2.putText(bgr, lab, (x1 + 2, ty - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
                    made.append((True, self._jpeg(bgr), ""))
                self.encode_s += time.perf_counter() - t0
                for drawn, jpeg, objs in made:
                    if jpeg is None:
                        continue
                    self.encoded += 1
                    snap = Snapshot(jpeg, captured, next(self._seq), objs)
                    with self._new:
                        self.latest[(sid, drawn)] = snap
                        self._new.notify_all()
                if made and self.on_snapshot is not None:
                    self.on_snapshot(sid)

    def _jpeg(self, bgr: np.ndarray) -> bytes | None:
        import cv2
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return buf.tobytes() if ok else None

    def wait_newer(self, sid: int, seq: int, timeout: float, drawn: bool = True) -> Snapshot | None:
        """The stream's latest JPEG once it is newer than `seq` (None on timeout)."""
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                snap = self.latest.get((sid, drawn))
                if snap is not None and snap.seq > seq:
                    return snap
                left = deadline - time.monotonic()
                if left <= 0 or self._stop:
                    return None
                self._new.wait(left)

    def watch(self, sid: int, delta: int, drawn: bool = True) -> None:
        """A live view of `sid` opens (+1) or closes (-1); drawn: boxes drawn into the JPEG, else
        sent beside it (the console draws them)."""
        with self._lock:
            for counts, applies in ((self.viewers, True), (self.plain_viewers, not drawn)):
                if not applies:
                    continue
                n = counts.get(sid, 0) + delta
                if n > 0:
                    counts[sid] = n
                else:
                    counts.pop(sid, None)

    # -- reading ---------------------------------------------------------------------------------
    def stream_stats(self, sid: int) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            st = self.streams.get(sid)
            if st is None:
                return {"frames": 0, "fps": 0.0, "latency_ms": None, "latency_p95_ms": None}
            while st.recent and st.recent[0][0] < now - WINDOW_S:
                st.recent.popleft()
            lats = sorted(lat for _, lat in st.recent)
            span = min(WINDOW_S, max(1e-3, now - st.recent[0][0])) if len(st.recent) > 1 else WINDOW_S
            fps = (len(st.recent) - 1) / span if len(st.recent) > 1 else 0.0
            return {"frames": st.frames, "fps": round(fps, 2),
                    "latency_ms": round(1000 * lats[len(lats) // 2], 1) if lats else None,
                    "latency_p95_ms": round(1000 * lats[int(0.95 * (len(lats) - 1))], 1) if lats else None}

    def histograms(self) -> dict[int, tuple[list[int], float, int]]:
        with self._lock:
            return {sid: (list(st.hist), st.lat_sum, st.frames) for sid, st in self.streams.items()}

    def forget(self, sid: int) -> None:
        with self._lock:
            self.streams.pop(sid, None)
        with self._new:
            self.latest.pop((sid, True), None)
            self.latest.pop((sid, False), None)

    def _event(self, kind: str, text: str, **data: Any) -> None:
        self.events.append({"id": next(self._event_seq), "time": time.time(), "type": kind, "text": text, **data})

    def event(self, kind: str, text: str, **data: Any) -> None:
        with self._lock:
            self._event(kind, text, **data)

    def recent_events(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["id"] > after][-limit:]

    def close(self) -> None:
        self._stop = True
        with self._work:
            self._work.notify_all()
        with self._new:
            self._new.notify_all()
        self._thread.join(2)


@functools.lru_cache(maxsize=1024)
def _color(label: str) -> tuple[int, int, int]:
    h = sum(label.split(" ")[0].encode()) * 47 % 180
    import cv2
    hsv = np.uint8([[[h, 200, 220]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].tolist()
    return int(b), int(g), int(r)


def gpu_memory() -> list[tuple[str, int, int]]:
    """(device, allocated, reserved) bytes of torch's CUDA allocator, where the pipeline already
    uses torch on a GPU (torch is not imported here otherwise)."""
    import sys
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return []
    return [(f"cuda:{i}", torch.cuda.memory_allocated(i), torch.cuda.memory_reserved(i))
            for i in range(torch.cuda.device_count())]
