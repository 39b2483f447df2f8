"""NVDEC in a separate process, so that decoding never waits for the pipeline's GIL.

PyNvVideoCodec's Decode() gives the GIL up and takes it back inside each call, so in one process
every decoding thread waits whenever another thread runs Python (one busy Python thread slows a
decoder to a quarter: benchmarks/RESULTS.md). With `urisrc nvdec-process=1` the decoders run in
a worker process (one per GPU, started on first use, shared by all such sources). Each stream
gets a ring of NV12 buffers in GPU memory that both processes map (CUDA IPC); the worker decodes
into a free slot and says so through a pipe, the source copies the slot into a tensor of its
own and hands the slot back once that copy has finished (checked without waiting, several slots
per message). Frames never leave the GPU; what crosses the pipe per frame is a few integers.
Neither side waits on the GPU per frame: each slot has an interprocess CUDA event, recorded by
the worker after its copy into the slot and waited on by the source's stream before its copy out.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from typing import Iterator

from ..errors import MediaError, UnsupportedCodecError
from ..media.reader import DecodedFrame

log = logging.getLogger("vidpipe")
RING = 6  # NV12 buffers per stream shared with the worker
_OPEN_TIMEOUT_S = 120.0  # the first open also starts the worker (imports torch, creates a CUDA context)

_workers: dict[int, _Worker] = {}
_workers_lock = threading.Lock()


class _Worker:
    """The parent's end: the worker process, its pipe and one queue of messages per stream."""

    def __init__(self, index: int):
        import multiprocessing as mp

        import torch.multiprocessing  # noqa: F401  (CUDA tensors then cross pipes as IPC handles)
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, index), daemon=True, name=f"vidpipe-nvdec{index}")
        self.proc.start()
        child.close()
        self.alive = True
        self.streams: dict[int, queue.SimpleQueue] = {}
        self._ids = itertools.count()
        self._send_lock = threading.Lock()
        threading.Thread(target=self._dispatch, daemon=True, name=f"vidpipe:nvdec-process{index}").start()

    def send(self, *msg) -> None:
        with self._send_lock:
            self.conn.send(msg)

    def open(self, path: str) -> tuple[int, queue.SimpleQueue]:
        sid = next(self._ids)
        q: queue.SimpleQueue = queue.SimpleQueue()  # waits in C: a message per frame
        self.streams[sid] = q
        self.send("open", sid, path)
        return sid, q

    def _dispatch(self) -> None:
        try:
            while True:
                msg = self.conn.recv()
                q = self.streams.get(msg[1])
                if q is not None:
                    q.put(msg)
        except (EOFError, OSError):
            self.alive = False
            for q in list(self.streams.values()):
                q.put(("died", None))


def _worker_for(index: int) -> _Worker:
    with _workers_lock:
        w = _workers.get(index)
        if w is None or not w.alive:
            w = _workers[index] = _Worker(index)
        return w


class ProcessNvDecReader:
    """NvDecReader's interface (width, height, fps, codec, errors, iteration of NV12 frames),
    decoded by the worker process."""

    # Every frame wakes two threads here (the pipe's dispatcher, then the source), and each waits
    # for the GIL behind the pipeline's busy Python threads: up to the switch interval (5 ms by
    # default) each time. The pipeline runs at this interval while such a source is in it: 16
    # streams on an H200 went 4-14% faster with it in four runs (benchmarks/RESULTS.md).
    switch_interval = 0.0005

    def __init__(self, uri: str, device: str = "cuda:0"):
        import torch

        from .decode import video_file
        path = video_file(uri)
        self.uri = uri
        self.device = torch.device(device)
        self._worker = _worker_for(self.device.index or 0)
        self._sid: int | None = None
        self._sid, self._q = self._worker.open(os.path.abspath(path))
        try:
            msg = self._q.get(timeout=_OPEN_TIMEOUT_S)
        except queue.Empty:
            self.close()
            raise MediaError(f"{path}: the NVDEC worker process did not answer in {_OPEN_TIMEOUT_S:.0f} s") from None
        if msg[0] != "opened":
            self.close()
            if msg[0] == "error":
                raise (UnsupportedCodecError if msg[2] == "UnsupportedCodecError" else MediaError)(msg[3])
            raise MediaError(f"{path}: the NVDEC worker process ended; see its messages above")
        meta, self._ring = msg[2], msg[3]
        # the worker records a slot's event once the slot holds its frame
        self._filled = [torch.cuda.Event.from_ipc_handle(self.device, h) for h in meta["events"]]
        self._copying: list = []  # (slot, event after its copy): slots handed back once copied
        self.width, self.height = meta["width"], meta["height"]
        self.fps, self.codec = meta["fps"], meta["codec"]
        self.frame_count = 0
        self.duration_s = None
        self.errors = 0

    def __iter__(self) -> Iterator[DecodedFrame]:
        import torch
        with torch.cuda.device(self.device):
            while self._sid is not None:
                try:
                    msg = self._q.get_nowait()
                except queue.Empty:  # before waiting, hand back every slot: the worker may need one
                    self._release(wait=True)
                    msg = self._q.get()
                if msg[0] == "frame":
                    _, _, slot, i, self.errors = msg
                    self._release(wait=False)
                    torch.cuda.current_stream().wait_event(self._filled[slot])
                    nv12 = self._ring[slot].clone()
                    copied = torch.cuda.Event()
                    copied.record()
                    self._copying.append((slot, copied))
                    yield DecodedFrame(None, i / self.fps, i, nv12=nv12)
                elif msg[0] == "eos":
                    self.errors = msg[2]
                    self._release(wait=True)
                    return
                elif msg[0] == "error":
                    raise MediaError(msg[3])
                else:
                    raise MediaError(f"{self.uri}: the NVDEC worker process ended while decoding")

    def _release(self, wait: bool) -> None:
        """Hands back the slots whose copies have finished (all of them, waiting, with wait=True):
        one message for several slots, and no wait per frame."""
        done = []
        while self._copying and (wait or self._copying[0][1].query()):
            slot, ev = self._copying.pop(0)
            ev.synchronize()
            done.append(slot)
        if done and self._sid is not None:
            self._worker.send("free", self._sid, done)

    def close(self) -> None:
        if getattr(self, "_copying", None):
            self._release(wait=True)  # the ring is not read after this
        sid, self._sid = self._sid, None
        if sid is not None:
            self._worker.streams.pop(sid, None)
            if self._worker.alive:
                self._worker.send("close", sid)
        self._ring = None


def serve(conn, index: int) -> None:
    """The worker process: decodes each opened stream in its own thread into its ring."""
    import torch
    import torch.multiprocessing  # CUDA tensors cross the pipe as IPC handles (the ring)

    from .decode import NvDecReader
    torch.cuda.set_device(index)
    send = sender(conn)

    def run(sid: int, path: str, slots: queue.SimpleQueue) -> None:
        try:
            reader = NvDecReader(path, f"cuda:{index}")
        except Exception as e:  # reported to the source, which raises it there
            send("error", sid, type(e).__name__, str(e))
            return
        h, w = reader.height, reader.width
        ring = torch.empty((RING, h * 3 // 2, w), dtype=torch.uint8, device=f"cuda:{index}")
        filled = [torch.cuda.Event(interprocess=True) for _ in range(RING)]
        for ev in filled:
            ev.record()  # an interprocess event has its handle once recorded
        for s in range(RING):
            slots.put(s)
        send("opened", sid, {"width": w, "height": h, "fps": reader.fps, "codec": reader.codec,
                             "events": [ev.ipc_handle() for ev in filled]}, ring)
        try:
            for i, nv12 in enumerate(reader.frames_nv12()):
                slot = slots.get()
                if slot is None:  # closed
                    return
                # the decoder's surface is copied on the stream the decoder works on, so its next
                # picture cannot overwrite it first; the source waits on the event, not this thread
                ring[slot].copy_(nv12[:h * 3 // 2, :w])
                filled[slot].record()
                send("frame", sid, slot, i, reader.errors)
        except Exception as e:  # the source raises it
            send("error", sid, type(e).__name__, f"{path}: decoding failed: {e}")
            return
        send("eos", sid, reader.errors)
        for _ in range(RING):  # the ring lives until the source has copied every slot back
            if slots.get() is None:
                return

    serve_streams(conn, run)


def sender(conn):
    """send(*msg): one message through `conn`, from any thread."""
    lock = threading.Lock()

    def send(*msg) -> None:
        with lock:
            conn.send(msg)
    return send


def serve_streams(conn, run) -> None:
    """The worker's message loop, until the pipe closes: "open" starts run(sid, path, slots) in a
    thread of its own, `slots` being the stream's queue of ring slots handed back by the source
    ("free"), where None means the stream was closed ("close")."""
    free: dict[int, queue.SimpleQueue] = {}
    while True:
        try:
            kind, sid, *rest = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "open":
            free[sid] = slots = queue.SimpleQueue()
            threading.Thread(target=run, args=(sid, rest[0], slots), daemon=True).start()
        elif kind == "free" and sid in free:
            for slot in rest[0]:
                free[sid].put(slot)
        elif kind == "close" and sid in free:
            free.pop(sid).put(None)
