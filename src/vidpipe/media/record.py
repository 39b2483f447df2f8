"""Smart record: a cache of a stream's encoded packets and clips cut from it without re-encoding.

`PacketCache` keeps the packets (as demuxed: H.264/H.265 from the file or camera) of the last
`seconds`, always from a keyframe on, so any window taken from it decodes. `Recorder` owns one
stream's cache and at most one clip at a time: `start(start_before, duration)` at the last frame
delivered (t) opens the file, writes the cached packets from the last keyframe at or before
t - start_before, then, as frames are delivered, every packet (in decode order) up to t + duration,
and finalises the file; a start
while recording moves the end instead of opening a second file. Whatever ends a clip early (stop,
end of stream, a camera lost, a write that fails) finalises what was written, so the file plays.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MediaError

log = logging.getLogger("vidpipe")

MP4_CODECS = {"h264", "hevc", "av1", "vp9", "mpeg4"}  # what the clip can carry in MP4 without re-encoding
CONTAINERS = {0: ("mp4", ".mp4"), 1: ("matroska", ".mkv"), "mp4": ("mp4", ".mp4"), "mkv": ("matroska", ".mkv")}


@dataclass(slots=True)
class Cached:
    packet: Any         # av.Packet (keeps its bytes, pts, dts, flags, time base)
    t: float            # presentation time in seconds from the stream's start
    td: float           # decode time in seconds (ordering; pts when the packet has no dts)
    keyframe: bool
    size: int


class PacketCache:
    """The last `seconds` of a stream's packets, starting at a keyframe."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.items: deque[Cached] = deque()
        self.keyframes: deque[Cached] = deque()  # the keyframes among items, oldest first
        self.bytes = 0

    def push(self, item: Cached) -> None:
        items = self.items
        if item.keyframe:
            self.keyframes.append(item)
        elif not items:
            return  # nothing decodable until the first keyframe
        items.append(item)
        self.bytes += item.size
        # drop whole GOPs from the front while the next keyframe still leaves `seconds` behind us
        keys = self.keyframes
        while len(keys) > 1 and item.td - keys[1].td >= self.seconds:
            keys.popleft()
            first = keys[0]
            while items[0] is not first:
                self.bytes -= items.popleft().size

    def from_keyframe_before(self, t: float) -> list[Cached]:
        """Packets from the last keyframe at or before t (the oldest keyframe if none is)."""
        items = list(self.items)
        start = 0
        for k, it in enumerate(items):
            if it.keyframe and it.t <= t + 1e-9:
                start = k
        return items[start:]


@dataclass
class ClipInfo:
    """What a finished clip holds (the recording-done bus message and callbacks carry it)."""
    source_id: int
    path: str
    first_pts: float            # seconds on the stream's clock
    last_pts: float
    packets: int
    bytes: int
    error: str = ""             # why it ended early ("" when it ran its course)
    finished_at: float = field(default_factory=time.monotonic)
    latency_s: float | None = None  # clips that ran their course: end frame delivered -> file finalised

    @property
    def duration(self) -> float:
        return self.last_pts - self.first_pts


class _Clip:
    def __init__(self, path: str, fmt: str, template: Any, end_t: float, time_base: Any = None):
        import av
        self.path, self.end_t = path, end_t
        # MP4 is written fragmented (a fragment per keyframe): a clip cut short by a crash or a full
        # disk still plays up to its last fragment; MKV plays without its index anyway
        opts = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if fmt == "mp4" else {}
        opts["flush_packets"] = "1"  # to the disk as written: nothing waits in a buffer when the process dies
        try:
            self.out = av.open(path, "w", format=fmt, options=opts)
        except (av.FFmpegError, OSError) as e:
            raise MediaError(f"{path}: cannot create the clip ({getattr(e, 'strerror', None) or e}); check that "
                             "the folder exists and is writable") from None
        try:
            self.stream = self.out.add_stream_from_template(template)
        except AttributeError:  # PyAV < 14
            self.stream = self.out.add_stream(template=template)
        if time_base is not None:
            self.stream.time_base = time_base
        self.pending: deque[Cached] = deque()   # packets for the clip not yet due (see Recorder.frame)
        self.first_pts: float | None = None
        self.last_pts = 0.0
        self.packets = self.bytes = 0
        self.t0_ts: int | None = None  # the first packet's dts: the clip starts at 0

    def write(self, item: Cached) -> None:
        import av
        pkt = item.packet
        clone = av.Packet(bytes(pkt))
        base = pkt.dts if pkt.dts is not None else pkt.pts
        if self.t0_ts is None:
            self.t0_ts = base or 0
        clone.pts = None if pkt.pts is None else pkt.pts - self.t0_ts
        clone.dts = None if pkt.dts is None else pkt.dts - self.t0_ts
        clone.is_keyframe = pkt.is_keyframe
        clone.time_base = pkt.time_base
        clone.stream = self.stream
        self.out.mux(clone)
        self.first_pts = item.t if self.first_pts is None else min(self.first_pts, item.t)
        self.last_pts = max(self.last_pts, item.t)
        self.packets += 1
        self.bytes += item.size

    def close(self) -> None:
        self.out.close()


class Recorder:
    """One stream's cache and clip. Called from the source's thread (push, frames) and from
    anywhere (start/stop): the owner serialises them (the source element holds a lock)."""

    def __init__(self, source_id: int, *, cache_s: float = 20.0, folder: str = ".", prefix: str = "sr",
                 container: Any = 0, default_duration: float = 10.0,
                 on_done: Callable[[ClipInfo], None] | None = None):
        if container not in CONTAINERS:
            raise MediaError(f"smart-rec-container must be 0 (mp4) or 1 (mkv), got {container!r}")
        self.source_id = source_id
        self.cache = PacketCache(cache_s)
        self.folder, self.prefix = folder, prefix
        self.fmt, self.ext = CONTAINERS[container]
        self.default_duration = default_duration
        self.on_done = on_done
        self.template: Any = None      # the input stream (codec parameters for the clip's stream)
        self.time_base: Any = None     # the clip stream's time base, when the template's is not the packets'
        self.now = 0.0                 # time of the last frame the source delivered
        self.clip: _Clip | None = None
        self.done: list[ClipInfo] = []
        self._n = 0
        self._end_seen: float | None = None
        self._tb, self._start = 0.0, 0
        self.push_s = 0.0  # time spent caching packets (the cost of smart record per stream)

    # -- from the source ---------------------------------------------------------------------
    def push(self, packet: Any, stream: Any) -> None:
        """A demuxed packet (before decoding)."""
        t0 = time.perf_counter()
        try:
            self._push(packet, stream)
        finally:
            self.push_s += time.perf_counter() - t0

    def _push(self, packet: Any, stream: Any) -> None:
        size = packet.size
        pts, dts = packet.pts, packet.dts
        if size == 0 or pts is None and dts is None:
            return
        if stream is not self.template:  # a new stream: its time base as a float, once
            self.template = stream
            self._tb = float(packet.time_base or stream.time_base)
            self._start = stream.start_time or 0
        tb, start = self._tb, self._start
        t = ((pts if pts is not None else dts) - start) * tb
        td = ((dts if dts is not None else pts) - start) * tb
        item = Cached(packet, t, td, packet.is_keyframe, size)
        self.cache.push(item)
        if self.clip is not None:
            self.clip.pending.append(item)

    def frame(self, now: float) -> None:
        """The source delivered a frame at `now`: packets up to it go into the clip (the demuxer
        runs a few packets ahead of the decoder, so a stop cuts at the frame the caller saw), and
        the clip ends once its end time is reached."""
        self.now = now
        clip = self.clip
        if clip is None:
            return
        self._flush(min(now, clip.end_t))
        if self.clip is not None and now >= clip.end_t - 1e-9:
            self._end_seen = time.monotonic()
            self.finish()

    def _flush(self, upto: float) -> None:
        clip = self.clip
        while clip is not None and clip.pending and clip.pending[0].td <= upto + 1e-9:
            self._write(clip.pending.popleft())
            clip = self.clip

    # -- control -----------------------------------------------------------------------------
    def start(self, start_before: float = 2.0, duration: float | None = None, t: float | None = None) -> str | None:
        """Records from the last keyframe at or before t - start_before (t: the last frame seen)
        to t + duration. Returns the clip's path; while recording, moves its end and returns
        the same path."""
        t = self.now if t is None else t
        end = t + (self.default_duration if duration is None else duration)
        if self.clip is not None:
            self.clip.end_t = max(self.clip.end_t, end)
            return self.clip.path
        if self.template is None:
            raise MediaError(f"stream {self.source_id}: nothing cached yet to record from")
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as e:
            raise MediaError(f"{self.folder}: cannot create the clip folder ({e.strerror}); check "
                             "smart-rec-dir-path") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self._n += 1
        fmt, ext = self.fmt, self.ext
        codec = getattr(getattr(self.template, "codec_context", None), "name", "")
        if fmt == "mp4" and codec not in MP4_CODECS:  # MPEG-4 part 2 in AVI, MJPEG cameras ...: MKV holds them
            log.info("stream %d: %s cannot go into MP4; writing MKV clips", self.source_id, codec)
            fmt, ext = CONTAINERS["mkv"]
        path = os.path.join(self.folder, f"{self.prefix}_{self.source_id}_{self._n:04d}_{stamp}{ext}")
        clip = _Clip(path, fmt, self.template, end, self.time_base)
        self.clip = clip
        clip.pending.extend(self.cache.from_keyframe_before(t - start_before))
        self._flush(min(self.now, end))
        return path

    def stop(self, error: str = "") -> ClipInfo | None:
        """Ends the clip now (finalised, playable)."""
        return self.finish(error)

    def finish(self, error: str = "", upto: float | None = None) -> ClipInfo | None:
        """Ends the clip: packets up to `upto` (default: the last frame delivered, or the clip's
        end) are written, then the file is finalised."""
        if self.clip is None:
            return None
        self._flush(min(self.now if upto is None else upto, self.clip.end_t))
        clip, self.clip = self.clip, None
        if clip is None:  # a write failed while flushing: finish() ran already
            return self.done[-1] if self.done else None
        try:
            clip.close()
        except Exception as e:  # the muxer could not write its trailer (disk full): say so
            error = error or f"could not finalise: {e}"
        info = ClipInfo(self.source_id, clip.path, clip.first_pts or 0.0, clip.last_pts, clip.packets, clip.bytes, error)
        if self._end_seen is not None:  # from the frame at the clip's end to the file finalised
            info.latency_s = info.finished_at - self._end_seen
            self._end_seen = None
        self.done.append(info)
        if self.on_done is not None:
            self.on_done(info)
        return info

    def _write(self, item: Cached) -> None:
        clip = self.clip
        assert clip is not None
        try:
            clip.write(item)
        except Exception as e:  # disk full, folder gone: keep what is written, end the clip
            log.warning("%s: recording stopped: %s", clip.path, e)
            self.finish(f"write failed: {e}")
