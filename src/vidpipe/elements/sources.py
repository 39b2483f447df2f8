"""Sources: files and URIs through PyAV, decoded in the source's thread (FFmpeg threads)."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Iterator

from ..core.clock import Pacer
from ..core.element import Source
from ..core.events import Event, StreamEOS, StreamStart
from ..core.meta import Batch, Frame
from ..core.props import Prop
from ..core.registry import register
from ..errors import MediaError, PropertyError, UnsupportedCodecError
from ..media.reader import ImageSequenceReader, VideoReader, is_image_sequence, is_network

log = logging.getLogger("vidpipe")


AUTO_WORKER_STREAMS = 4  # nvdec-process=-1: from this many NVDEC files on one GPU, the worker (benchmarks/RESULTS.md)


@register("urisrc", aliases={"uridecodebin": {}, "nvurisrcbin": {}, "filesrc": {}})
class UriSource(Source):
    """Reads and decodes a video file or URI: MP4/MKV/AVI/MOV/TS, raw .h264/.h265, rtsp://,
    http(s):// (progressive or HLS), /dev/videoN (V4L2 camera), an image folder or pattern
    (img%05d.jpg). Network sources are live: they drop the oldest frames when downstream is slow
    and reconnect with backoff when lost. Emits one-frame batches of RGB frames."""

    description = "file/URI source with decoding (PyAV/FFmpeg)"
    uri = Prop(str, "", "file path or URI (file://, rtsp://, http://)")
    location = Prop(str, "", "file path (same as uri; GStreamer's filesrc name)")
    source_id = Prop(int, 0, "source id stamped on frames (streammux replaces it with its pad index)")
    file_loop = Prop(bool, False, "restart from the beginning at end of file (timestamps keep growing)")
    num_buffers = Prop(int, -1, "stop after this many frames (-1: all)")
    decode_threads = Prop(int, 0, "FFmpeg decoder threads (0: automatic)")
    device = Prop(str, "cpu", "where frames are decoded: cpu or cuda:N")
    nvdec_process = Prop(int, -1, "device=cuda files: decode in a worker process (one per GPU, shared by all "
                         "such sources; frames stay on the GPU), so decoding never waits for this process's "
                         f"Python threads. -1: when the pipeline decodes {AUTO_WORKER_STREAMS} or more files on this "
                         "GPU; 0: never; 1: always", choices=[-1, 0, 1])
    live = Prop(bool, False, "behave like a camera: emit frames in real time (paced by their timestamps)")
    reconnect_interval = Prop(float, 0.5, "first wait before reconnecting a lost network stream (seconds; "
                              "doubles up to reconnect-max)", minimum=0.05)
    reconnect_max = Prop(float, 8.0, "longest wait between reconnection attempts (seconds)", minimum=0.1)
    timeout = Prop(float, 5.0, "seconds without data before a network stream counts as lost", minimum=0.5)
    latency = Prop(int, 200, "accepted for DeepStream compatibility (ms; jitter buffering is FFmpeg's)")
    rtsp_transport = Prop(str, "tcp", "RTSP transport for rtsp:// inputs", choices=["tcp", "udp"])
    image_fps = Prop(float, 25.0, "frame rate given to image sequences (folder or img%05d.jpg)", minimum=0.1)
    smart_record = Prop(int, 0, "smart record (DeepStream's key): 0 off, 1 or 2 on: encoded packets are cached "
                        "and pipeline.smart_record.start(source_id) cuts clips from them", choices=[0, 1, 2])
    smart_rec_cache = Prop(float, 20.0, "seconds of encoded packets kept for smart record", minimum=0.5)
    smart_rec_container = Prop(int, 0, "clip container: 0 mp4, 1 mkv", choices=[0, 1])
    smart_rec_file_prefix = Prop(str, "Smart_Record", "clip file names: PREFIX_STREAM_N_DATE-TIME.mp4")
    smart_rec_dir_path = Prop(str, ".", "folder for the clips (made when missing)")
    smart_rec_default_duration = Prop(float, 10.0, "seconds recorded after the trigger when start() gives none",
                                      minimum=0.0)
    smart_rec_start_time = Prop(float, 2.0, "smart-rec-interval recordings: seconds before the trigger", minimum=0.0)
    smart_rec_duration = Prop(float, 10.0, "smart-rec-interval recordings: seconds after the trigger", minimum=0.0)
    smart_rec_interval = Prop(float, 0.0, "start a recording every this many seconds of the stream (0: only "
                              "when asked), as deepstream-app's test mode does", minimum=0.0)

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.reader: VideoReader | None = None
        self.decoder = ""  # after start: nvdec | ffmpeg | ffmpeg+upload
        self.recorder = None  # media.record.Recorder when smart-record is on
        self._rec_lock = threading.RLock()  # reentrant: a recording-done callback may start the next clip
        self._rec_next = 0.0
        self._rec_ended = False
        self._rec_clock: OrderedDict[int, float] = OrderedDict()  # frame number -> time on the packet clock

    @property
    def path(self) -> str:
        return self.uri or self.location

    def start(self) -> None:
        if not self.path:
            raise PropertyError(f"{self.name}: set 'uri' (or 'location') to a video file or URI")
        from ..gpu import normalize_device, require_cuda
        self._device = normalize_device(self.device)
        if self._device != "cpu":
            require_cuda(self._device, self.name)
        self.network = is_network(self.path)
        self.reader = self._open()
        r = self.reader
        self.decoder = "nvdec" if type(r).__name__ in ("NvDecReader", "ProcessNvDecReader") else \
            ("ffmpeg+upload" if type(r).__name__ == "UploadReader" else "ffmpeg")
        if (self.live or self.network) and self.src_pad.peer is not None:
            self.src_pad.peer.leaky = True  # live: drop the oldest frames rather than fall behind
        if self.smart_record:
            self._start_recorder()

    # -- smart record ------------------------------------------------------------------------
    def stream_id(self) -> int:
        """The id frames of this source carry: its muxer pad index, else source-id."""
        peer = self.src_pad.peer
        if peer is not None and peer.name.startswith("sink_"):
            return int(peer.name.split("_")[1])
        return self.source_id

    def _start_recorder(self) -> None:
        from ..media.record import Recorder
        if self._packet_reader() is None:
            raise PropertyError(f"{self.name}: smart-record needs FFmpeg demuxing; this source decodes with "
                                f"{self.decoder or 'images'} (for NVDEC files set device=cpu on this source)")
        self.recorder = Recorder(self.stream_id(), cache_s=self.smart_rec_cache, folder=self.smart_rec_dir_path,
                                 prefix=self.smart_rec_file_prefix, container=self.smart_rec_container,
                                 default_duration=self.smart_rec_default_duration, on_done=self._recording_done)
        self._hook_recorder()

    def _packet_reader(self):
        r = self.reader
        r = getattr(r, "reader", r)  # UploadReader wraps a VideoReader
        return r if isinstance(r, VideoReader) else None

    def _hook_recorder(self) -> None:
        r = self._packet_reader()
        if r is not None and self.recorder is not None:
            rec, lock = self.recorder, self._rec_lock

            def on_packet(packet, stream) -> None:
                with lock:
                    rec.push(packet, stream)
            r.on_packet = on_packet

    def _recording_done(self, info) -> None:
        text = f"stream {info.source_id}: clip {info.path} ({info.duration:.2f} s, {info.packets} packets)"
        if info.error:
            text += f" ended early: {info.error}"
        self.post("recording-done", text, source_id=info.source_id, path=info.path, first_pts=info.first_pts,
                  last_pts=info.last_pts, duration=info.duration, error=info.error)
        if self.pipeline is not None:
            self.pipeline.smart_record._done(info)

    def start_recording(self, start_before: float | None = None, duration: float | None = None,
                        frame_num: int | None = None) -> str:
        """Starts (or extends) this source's clip; returns its path. t is the time of frame
        `frame_num` of this source (a frame a probe downstream is looking at, while the source may
        be frames ahead), else of the last frame it delivered. See Pipeline.smart_record."""
        if self.recorder is None:
            raise PropertyError(f"{self.name}: smart record is off; set smart-record=1 on this source")
        with self._rec_lock:
            t = self._rec_clock.get(frame_num) if frame_num is not None else None
            path = self.recorder.start(self.smart_rec_start_time if start_before is None else start_before,
                                       duration, t)
            if self._rec_ended:  # the stream is over: the clip is what the cache holds, finished now
                self.recorder.finish(upto=float("inf"))
            return path

    def stop_recording(self):
        if self.recorder is None:
            return None
        with self._rec_lock:
            return self.recorder.stop()

    def _frame_seen(self, pts: float, n: int) -> None:
        """Smart record: the trigger clock (frame n's time on the stream's packet clock), and the
        smart-rec-interval recordings."""
        rec = self.recorder
        if rec is None:
            return
        with self._rec_lock:
            self._rec_clock[n] = pts
            if len(self._rec_clock) > 4096:  # frames still in flight downstream are far fewer
                self._rec_clock.popitem(last=False)
            rec.frame(pts)
            if self.smart_rec_interval > 0 and pts >= self._rec_next and rec.template is not None:
                self._rec_next = pts + self.smart_rec_interval
                try:
                    rec.start(self.smart_rec_start_time, self.smart_rec_duration)
                except Exception as e:  # a folder that cannot be written: say so, keep decoding
                    self.post("warning", f"{self.name}: smart record: {e}", source_id=rec.source_id)

    def _finish_recording(self) -> None:
        if self.recorder is not None:
            with self._rec_lock:
                self._rec_ended = True
                self.recorder.finish(upto=float("inf"))

    def _recorder_reset(self, why: str) -> None:
        """The stream restarted (file loop) or was lost: finish the clip, start a new cache."""
        rec = self.recorder
        if rec is None:
            return
        from ..media.record import PacketCache
        with self._rec_lock:
            rec.finish(why)
            self._rec_clock.clear()
            rec.cache = PacketCache(rec.cache.seconds)
            rec.template = None
        self._hook_recorder()

    def _nvdec_file(self) -> bool:
        return (self.device or "cpu").strip().lower() != "cpu" and bool(self.path) and not is_image_sequence(self.path) \
            and not is_network(self.path)

    def uses_worker(self) -> bool:
        """Whether NVDEC runs in the worker process: nvdec-process=1, or -1 (auto) and the
        pipeline decodes AUTO_WORKER_STREAMS or more files on this source's GPU. Decoding in this
        process, a decoder waits whenever another thread runs Python; the worker costs a CUDA
        context and a second or two at the first open. Measured on an H100 with a socket per
        stream (benchmarks/RESULTS.md): +9% at 8 streams, -3% to +21% at 16 and 64, mixed at 2-4."""
        if not self._nvdec_file():
            return False
        if self.nvdec_process >= 0:
            return self.nvdec_process == 1
        from ..gpu import normalize_device
        mine = normalize_device(self.device)
        peers = [e for e in (self.pipeline.elements if self.pipeline is not None else [self])
                 if isinstance(e, UriSource) and e.nvdec_process != 0 and e._nvdec_file()
                 and normalize_device(e.device) == mine]
        return len(peers) >= AUTO_WORKER_STREAMS

    def _open(self):
        if self._device != "cpu":
            return self._open_gpu()
        if is_image_sequence(self.path):
            return ImageSequenceReader(self.path, self.image_fps)
        opts = {"rtsp_transport": self.rtsp_transport} if self.path.startswith("rtsp") else {}
        return VideoReader(self.path, threads=self.decode_threads, options=opts,
                           timeout_s=self.timeout if is_network(self.path) else None)

    def _open_gpu(self):
        """Files: NVDEC (PyNvVideoCodec). Otherwise, or without it: decode on the CPU, upload once."""
        from ..gpu.decode import NvDecReader, UploadReader, have_nvdec, open_pyav_hw
        plain_file = not is_image_sequence(self.path) and not is_network(self.path)
        if plain_file and have_nvdec():
            try:
                if self.uses_worker():
                    from ..gpu.decode_process import ProcessNvDecReader
                    return ProcessNvDecReader(self.path, self._device)
                return NvDecReader(self.path, self._device)
            except UnsupportedCodecError as e:
                log.warning("%s; decoding on the CPU and uploading frames instead", e)
        elif plain_file:
            log.warning("%s: PyNvVideoCodec is not installed, so FFmpeg decodes (NVDEC through PyAV when its "
                        "build has it) and frames are uploaded; pip install pynvvideocodec for NVDEC into "
                        "GPU memory", self.name)
            return UploadReader(open_pyav_hw(self.path, threads=self.decode_threads, timeout_s=None), self._device)
        dev, self._device = self._device, "cpu"
        try:
            return UploadReader(self._open(), dev)
        finally:
            self._device = dev

    def _generate_network(self) -> Iterator[Batch | Event]:
        """Live network stream: wall-clock timestamps; reconnect with backoff when lost."""
        reader = self.reader
        assert reader is not None
        t0 = time.monotonic()
        n = 0
        wait = self.reconnect_interval
        while not self._stop_requested():
            for df in reader:
                self._frame_seen(df.pts_seconds, n)
                yield Batch([Frame(df.image, self.source_id, n, time.monotonic() - t0, source_uri=self.path,
                                   source_size=(reader.width, reader.height))])
                n += 1
                wait = self.reconnect_interval
                if 0 <= self.num_buffers <= n or self._stop_requested():
                    return
            if self._stop_requested():
                return
            if self.path.startswith(("http://", "https://")) and reader.duration_s and not reader.errors:
                return  # a finite HTTP video (or ended VOD playlist) simply ended
            reader.close()
            self._recorder_reset("the stream was lost")
            self.stats["reconnects"] = self.stats.get("reconnects", 0) + 1
            self.post("stream-gap", f"{self.path}: stream lost; reconnecting", source_id=self.stream_id(), frames=n)
            while not self._stop_requested():
                self._wake.wait(wait)
                wait = min(wait * 2, self.reconnect_max)
                if self._stop_requested():
                    return
                try:
                    self.reader = reader = self._open()
                except MediaError as e:
                    log.info("%s: reconnect failed (%s); next try in %.1fs", self.path, e, wait)
                    continue
                self._hook_recorder()
                self.post("stream-resumed", f"{self.path}: reconnected", source_id=self.stream_id(), frames=n)
                break

    def generate(self) -> Iterator[Batch | Event]:
        reader = self.reader
        assert reader is not None
        self.post("stream-added", f"stream {self.stream_id()}: {self.path}", source_id=self.stream_id(),
                  uri=self.path, width=reader.width, height=reader.height, fps=reader.fps)
        yield StreamStart(self.source_id, self.path, reader.fps)
        if self.network:
            yield from self._generate_network()
            self._finish_recording()
            self.post("stream-eos", f"stream {self.stream_id()} ended", source_id=self.stream_id())
            yield StreamEOS(self.source_id)
            return
        n = 0
        pts_offset = 0.0
        pacer = Pacer()
        frame_dt = 1.0 / reader.fps if reader.fps else 0.04
        while True:
            first, last, count = None, -frame_dt, 0
            for df in reader:
                if self.live:
                    pacer.wait(pts_offset + df.pts_seconds, self._wake)
                frame = Frame(df.image, self.source_id, n, pts_offset + df.pts_seconds,
                              source_uri=self.path, source_size=(reader.width, reader.height), nv12=df.nv12)
                self._frame_seen(df.pts_seconds, n)
                last = df.pts_seconds
                first = last if first is None else first
                count += 1
                yield Batch([frame])
                n += 1
                if 0 <= self.num_buffers <= n or self._stop_requested():
                    break
            else:
                if self.file_loop and not self._stop_requested() and n > 0:
                    reader.close()
                    self.reader = reader = self._open()
                    self._recorder_reset("the file restarted (file-loop)")
                    if count > 1:  # the clip's own frame step (container rates can be rounded)
                        frame_dt = (last - first) / (count - 1)
                    pts_offset += last + frame_dt
                    continue
            break
        if n == 0:
            self.post("warning", f"{self.path}: no frame could be decoded", source_id=self.stream_id())
        elif reader.errors:
            self.post("warning", f"{self.path}: {reader.errors} damaged packet(s) skipped",
                      source_id=self.stream_id())
        self._finish_recording()
        self.post("stream-eos", f"stream {self.stream_id()} ended after {n} frames",
                  source_id=self.stream_id(), frames=n)
        yield StreamEOS(self.source_id)

    def stop(self) -> None:
        self._finish_recording()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
