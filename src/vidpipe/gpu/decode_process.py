"""NVDEC in a separate process, so that decoding never waits for the pipeline's GIL.

PyNvVideoCodec's Decode() gives the GIL up and takes it back inside each call, so in one process
every decoding thread waits whenever another thread runs Python (one busy Python thread slows a
decoder to a quarter: benchmarks/RESULTS.md). With `urisrc nvdec-process=1` the decoders run in
a worker process (one per GPU, started on first use, shared by all such sources). Each stream
gets a ring of NV12 buffers in GPU memory that both processes map (CUDA IPC); the worker decodes
into a free slot and says so, the source copies the slot into a tensor of its own and hands the
slot back once that copy has finished (checked without waiting, several slots per message).
Frames never leave the GPU. Neither side waits on the GPU per frame: each slot has an
interprocess CUDA event, recorded by the worker after its copy into the slot and waited on by the
source's stream before its copy out.

Each stream has a socket of its own to the worker (an authenticated Unix socket: the handshake
and the ring travel pickled, then 12-byte records), read by the source's own thread: a frame
wakes one thread of this process, and one read can bring several frames' records.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from typing import Iterator

from ..errors import MediaError, UnsupportedCodecError
from ..media.reader import DecodedFrame

log = logging.getLogger("vidpipe")
RING = 6  # NV12 buffers per stream shared with the worker
_HAND_BACK = 3  # slots handed back together (a send gives up the GIL: one per 3 or more frames, not
# one per frame); every slot goes back before the source waits for a frame, so none is kept from
# the worker while it could decode
_OPEN_TIMEOUT_S = 120.0  # the first open also starts the worker (imports torch, creates a CUDA context)

_workers: dict[int, _Worker] = {}
_workers_lock = threading.Lock()


class _Worker:
    """The parent's end of one worker process: its pipe (closed when this process ends, which
    ends the worker) and the address where it accepts streams."""

    def __init__(self, index: int):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, index), daemon=True, name=f"vidpipe-nvdec{index}")
        self.proc.start()
        child.close()
        if not self.conn.poll(_OPEN_TIMEOUT_S):
            self.proc.kill()
            raise MediaError(f"the NVDEC worker process did not start in {_OPEN_TIMEOUT_S:.0f} s")
        self.address = self.conn.recv()

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def connect(self):
        from multiprocessing import current_process
        from multiprocessing.connection import Client
        return Client(self.address, family="AF_UNIX", authkey=current_process().authkey)


def _worker_for(index: int) -> _Worker:
    with _workers_lock:
        w = _workers.get(index)
        if w is None or not w.alive:
            w = _workers[index] = _Worker(index)
        return w


# -- the per-stream link, after the handshake ---------------------------------------------------
# worker -> source: records of three int32 (slot, frame index, decode errors); slot -1 is the end
# of the stream, slot -2 an error whose text ("Kind\nmessage", its length in the second field)
# follows. source -> worker: one byte per slot handed back; closing the socket closes the stream.
_REC = struct.Struct("<iii")
_EOS, _ERROR = -1, -2


def _socket_of(conn) -> socket.socket:
    """The raw socket under a multiprocessing Connection (which is closed)."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    return sock


class WorkerLink:
    """The worker's end of a stream: free slots in, records out."""

    def __init__(self, sock: socket.socket, ring: int = RING):
        self.sock = sock
        self.free = list(range(ring))
        self.ring = ring

    def _take_back(self) -> bool:
        """Waits for slots handed back; False once the source closed the stream."""
        try:
            data = self.sock.recv(256)
        except OSError:
            return False
        self.free.extend(data)
        return bool(data)

    def slot(self) -> int | None:
        """A free slot, waiting for the source to hand one back; None once it closed the stream."""
        if not self.free and not self._take_back():
            return None
        return self.free.pop(0)

    def frame(self, slot: int, index: int, errors: int) -> None:
        self.sock.sendall(_REC.pack(slot, index, errors))

    def eos(self, errors: int) -> None:
        """The end of the stream; then waits until every slot is back (the source copies out of
        them until then) or the source closed."""
        self.sock.sendall(_REC.pack(_EOS, errors, 0))
        while len(self.free) < self.ring and self._take_back():
            pass

    def error(self, kind: str, text: str) -> None:
        data = f"{kind}\n{text}".encode()
        self.sock.sendall(_REC.pack(_ERROR, len(data), 0) + data)

    def close(self) -> None:
        self.sock.close()


class SourceLink:
    """The source's end of a stream: records in, slots handed back."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def next(self, block: bool = True):
        """The next record: ("frame", slot, index, errors), ("eos", errors) or ("error", kind,
        text); None when block is False and none has come. EOFError when the worker is gone."""
        buf = self.buf
        while True:
            if len(buf) >= 12:
                slot, a, b = _REC.unpack_from(buf)
                if slot >= 0:
                    del buf[:12]
                    return "frame", slot, a, b
                if slot == _EOS:
                    del buf[:12]
                    return "eos", a
                if len(buf) >= 12 + a:  # an error and its text
                    kind, _, text = bytes(buf[12:12 + a]).decode(errors="replace").partition("\n")
                    del buf[:12 + a]
                    return "error", kind, text
            try:
                data = self.sock.recv(4096, 0 if block else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            except OSError as e:
                raise EOFError(str(e)) from None
            if not data:
                raise EOFError("the worker closed the stream")
            buf += data

    def ready_frames(self) -> list[tuple[int, int, int]]:
        """The frame records already read, in order (no socket call): (slot, index, errors)."""
        buf, out, k = self.buf, [], 0
        while len(buf) >= k + 12:
            rec = _REC.unpack_from(buf, k)
            if rec[0] < 0:
                break
            out.append(rec)
            k += 12
        del buf[:k]
        return out

    def free(self, slots: list[int]) -> None:
        self.sock.sendall(bytes(slots))

    def close(self) -> None:
        """Closes the stream; a read waiting in another thread ends (EOFError)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # close() alone would leave that read waiting
        except OSError:
            pass
        self.sock.close()


class ProcessNvDecReader:
    """NvDecReader's interface (width, height, fps, codec, errors, iteration of NV12 frames),
    decoded by the worker process."""

    def __init__(self, uri: str, device: str = "cuda:0"):
        import torch

        from .decode import video_file
        path = video_file(uri)
        self.uri = uri
        self.device = torch.device(device)
        self._link: SourceLink | None = None
        self._copying: list[tuple[list[int], object]] = []  # (slots, their copies' event), oldest first
        self._held = 0  # slots in self._copying
        worker = _worker_for(self.device.index or 0)
        try:
            conn = worker.connect()
            conn.send(os.path.abspath(path))
            answered = conn.poll(_OPEN_TIMEOUT_S)
            msg = conn.recv() if answered else None
        except (OSError, EOFError) as e:
            raise MediaError(f"{path}: the NVDEC worker process is not answering ({e}); "
                             "see its messages above, or set nvdec-process=0") from None
        if msg is None:
            conn.close()
            raise MediaError(f"{path}: the NVDEC worker process did not answer in {_OPEN_TIMEOUT_S:.0f} s; "
                             "see its messages above, or set nvdec-process=0")
        if msg[0] == "error":
            conn.close()
            raise (UnsupportedCodecError if msg[1] == "UnsupportedCodecError" else MediaError)(msg[2])
        meta, self._ring = msg[1], msg[2]
        self._link = SourceLink(_socket_of(conn))
        # the worker records a slot's event once the slot holds its frame; the source records
        # the slot's own event after copying out of it, and hands the slot back once it is done
        self._filled = [torch.cuda.Event.from_ipc_handle(self.device, h) for h in meta["events"]]
        self._copied = [torch.cuda.Event() for _ in meta["events"]]
        self.width, self.height = meta["width"], meta["height"]
        self.fps, self.codec = meta["fps"], meta["codec"]
        self.frame_count = 0
        self.duration_s = None
        self.errors = 0

    def __iter__(self) -> Iterator[DecodedFrame]:
        import torch
        link = self._link
        with torch.cuda.device(self.device):
            # asked once: torch.cuda.current_stream() (also inside Event.record() without a stream)
            # was two fifths of this thread's GIL time per frame (py-spy, 16 streams)
            stream = torch.cuda.current_stream()
            while self._link is not None:
                try:
                    rec = link.next(block=False)
                    if rec is None:  # before waiting, hand back every slot: the worker may need one
                        self._release(wait=True)
                        rec = link.next()
                except EOFError:
                    if self._link is None:  # closed by close(), from another thread
                        return
                    raise MediaError(f"{self.uri}: the NVDEC worker process ended while decoding") from None
                if rec[0] == "frame":
                    # every frame already read goes out in one step: the worker fills a stream's
                    # slots in order on one CUDA stream, so the last slot's event covers them all,
                    # and a contiguous run of slots is one copy (each call into torch gives up the
                    # GIL, and a source behind the others reads several frames at once)
                    group = [rec[1:], *link.ready_frames()]
                    if self._held >= _HAND_BACK:
                        self._release(wait=False)
                    slots = [g[0] for g in group]
                    stream.wait_event(self._filled[slots[-1]])
                    frames = self._copy_out(slots)
                    done = self._copied[slots[-1]]
                    done.record(stream)
                    self._copying.append((slots, done))
                    self._held += len(slots)
                    for (_, i, errors), nv12 in zip(group, frames):
                        self.errors = errors
                        yield DecodedFrame(None, i / self.fps, i, nv12=nv12)
                elif rec[0] == "eos":
                    self.errors = rec[1]
                    self._release(wait=True)
                    return
                else:
                    raise MediaError(rec[2])

    def _copy_out(self, slots: list[int]) -> list:
        """Copies of the slots' frames: one copy per run of consecutive slots (a frame is a view
        of its run's copy, which lives as long as any of its frames: at most RING frames)."""
        ring, out, start = self._ring, [], 0
        for j in range(1, len(slots) + 1):
            if j == len(slots) or slots[j] != slots[j - 1] + 1:
                a, b = slots[start], slots[j - 1] + 1
                out += ring[a:b].clone().unbind(0) if b - a > 1 else [ring[a].clone()]
                start = j
        return out

    def _release(self, wait: bool) -> None:
        """Hands back the slots whose copies have finished (all of them, waiting, with wait=True):
        one message for several slots, and no wait per frame."""
        copying = self._copying
        n = 0
        if wait:
            for _, done in copying:
                done.synchronize()
            n = len(copying)
        else:  # query() says done: no synchronize() after it (one CUDA call per group, and its GIL)
            while n < len(copying) and copying[n][1].query():
                n += 1
        if n:
            done_slots = [slot for slots, _ in copying[:n] for slot in slots]
            self._copying = copying[n:]
            self._held -= len(done_slots)
            try:
                if self._link is not None:
                    self._link.free(done_slots)
            except OSError:
                pass  # the worker is gone: the next read says so

    def close(self) -> None:
        link, self._link = self._link, None
        copying, self._copying = self._copying, []
        for _, done in copying:  # the worker frees the ring once the stream is closed: copies first
            done.synchronize()
        if link is not None:
            link.close()
        self._ring = None


def serve(conn, index: int) -> None:
    """The worker process: accepts streams and decodes each in its own thread into its ring,
    until the parent's end of `conn` closes."""
    from multiprocessing import current_process
    from multiprocessing.connection import Listener
    # an abstract Unix address (nothing on disk to clean up), authenticated with the parent's key
    listener = Listener(f"\0vidpipe-nvdec-{os.getpid()}-{index}", family="AF_UNIX",
                        authkey=current_process().authkey)
    conn.send(listener.address)

    import torch
    import torch.multiprocessing  # noqa: F401  (CUDA tensors cross the socket as IPC handles: the ring)

    from .decode import NvDecReader
    torch.cuda.set_device(index)

    def run(stream, path: str) -> None:
        try:
            reader = NvDecReader(path, f"cuda:{index}")
        except Exception as e:  # reported to the source, which raises it there
            stream.send(("error", type(e).__name__, str(e)))
            stream.close()
            return
        h, w = reader.height, reader.width
        ring = torch.empty((RING, h * 3 // 2, w), dtype=torch.uint8, device=f"cuda:{index}")
        filled = [torch.cuda.Event(interprocess=True) for _ in range(RING)]
        for ev in filled:
            ev.record()  # an interprocess event has its handle once recorded
        stream.send(("opened", {"width": w, "height": h, "fps": reader.fps, "codec": reader.codec,
                                "events": [ev.ipc_handle() for ev in filled]}, ring))
        link = WorkerLink(_socket_of(stream))
        on = torch.cuda.current_stream()  # asked once, as in the source (below)
        try:
            for i, nv12 in enumerate(reader.frames_nv12()):
                slot = link.slot()
                if slot is None:  # closed
                    return
                # the decoder's surface is copied on the stream the decoder works on, so its next
                # picture cannot overwrite it first; the source waits on the event, not this thread
                ring[slot].copy_(nv12[:h * 3 // 2, :w])
                filled[slot].record(on)
                link.frame(slot, i, reader.errors)
            link.eos(reader.errors)  # the ring lives until the source has copied every slot back
        except OSError:  # the source went away
            return
        except Exception as e:  # the source raises it
            try:
                link.error(type(e).__name__, f"{path}: decoding failed: {e}")
            except OSError:
                pass
        finally:
            link.close()

    threading.Thread(target=serve_streams, args=(listener, run), daemon=True, name="accept").start()
    try:
        conn.recv()  # nothing comes: this returns when the parent's end closes
    except (EOFError, OSError):
        pass
    listener.close()


def serve_streams(listener, run) -> None:
    """The worker's accept loop (it ends with the process): each stream connects, sends its path,
    and run(connection, path) decodes it in a thread of its own."""
    from multiprocessing import AuthenticationError
    while True:
        try:
            stream = listener.accept()
        except AuthenticationError:
            continue
        except OSError:
            return
        threading.Thread(target=_start_stream, args=(stream, run), daemon=True).start()


def _start_stream(stream, run) -> None:
    try:
        path = stream.recv()
    except (EOFError, OSError):
        stream.close()
        return
    run(stream, path)
