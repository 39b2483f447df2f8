"""encoder (x264/x265 through PyAV) and filesink (MP4/MKV/MOV/TS/raw)."""
from __future__ import annotations

import logging
import os
from typing import Iterable

from ..core.element import Element, Sink
from ..core.events import Event, StreamStart
from ..core.meta import Batch, EncodedPacket
from ..core.props import Prop
from ..core.registry import register
from ..errors import MediaError
from ..core.tensors import is_tensor
from ..media.writer import PacketMuxer, VideoEncoder, container_format

log = logging.getLogger("vidpipe")


class _EncodeProps:
    codec = Prop(str, "h264", "video codec", choices=["h264", "h265"])
    bitrate = Prop(int, 0, "target bits per second (0: constant quality, see crf)", minimum=0)
    crf = Prop(int, 23, "constant-quality factor when bitrate is 0 (lower is better)", minimum=0, maximum=51)
    preset = Prop(str, "veryfast", "x264/x265 speed preset",
                  choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"])
    iframeinterval = Prop(int, 0, "keyframe interval in frames (0: two seconds)", minimum=0)
    tune = Prop(str, "", "x264 tune (e.g. zerolatency)", choices=["", "zerolatency", "film", "animation"])
    threads = Prop(int, 0, "encoder threads per stream (0: automatic)", minimum=0)


class EncoderPool:
    """One VideoEncoder per source id, created on the stream's first frame."""

    def __init__(self, owner: Element):
        self.owner = owner
        self.fps: dict[int, float] = {}
        self.encoders: dict[int, VideoEncoder] = {}
        self.warned = False

    def encode(self, batch: Batch) -> list[EncodedPacket]:
        o = self.owner
        out: list[EncodedPacket] = []
        for f in batch.frames:
            enc = self.encoders.get(f.source_id)
            nv12 = f.nv12 if not f.has_rgb else None  # a GPU frame nothing converted: encoded from NV12
            pixels = f.image if nv12 is None else nv12
            if enc is None and is_tensor(pixels) and pixels.device.type == "cuda":
                enc = self._gpu_encoder(f, pixels.device)
            if enc is None:
                enc = self.encoders[f.source_id] = VideoEncoder(
                    o.codec.lower(), width=f.width, height=f.height, fps=self.fps.get(f.source_id, 25.0),
                    bitrate=o.bitrate, crf=o.crf, preset=o.preset, keyint=o.iframeinterval, tune=o.tune,
                    threads=o.threads)
            if getattr(enc, "on_gpu", False):
                out += enc.encode(None if nv12 is not None else pixels, f.pts_seconds, f.source_id, nv12=nv12)
            elif nv12 is not None:
                from ..core.tensors import transfers
                host = nv12.cpu().numpy()
                if nv12.device.type != "cpu":
                    transfers.d2h(host.nbytes, frame=True)
                out += enc.encode(None, f.pts_seconds, f.source_id, nv12=host)
            else:
                out += enc.encode(f.to_numpy(), f.pts_seconds, f.source_id)
        return out

    def _gpu_encoder(self, f, device):
        """NVENC for a GPU frame, or None after one log line saying why the CPU encodes instead."""
        from ..gpu.encode import open_nvenc
        o = self.owner
        fps = self.fps.get(f.source_id, 25.0)
        gop = o.iframeinterval or max(1, round(fps * 2))
        enc = open_nvenc(o.codec.lower(), f.width, f.height, fps, o.bitrate, gop, device)
        if enc is None:
            if not self.warned:
                import torch
                log.warning("%s: no NVENC on %s (%s) or PyNvVideoCodec missing: encoding with %s on the "
                            "CPU; each frame is copied to the host", o.name, device,
                            torch.cuda.get_device_name(device), "x265" if o.codec == "h265" else "x264")
                self.warned = True
            return None
        enc.on_gpu = True  # type: ignore[attr-defined]
        log.info("%s: stream %d encoded with NVENC on %s", o.name, f.source_id, device)
        self.encoders[f.source_id] = enc  # type: ignore[assignment]
        return enc

    def flush(self) -> list[EncodedPacket]:
        out: list[EncodedPacket] = []
        for sid, enc in self.encoders.items():
            out += enc.flush(sid)
        return out


@register("encoder", aliases={"nvv4l2h264enc": {"codec": "h264"}, "nvv4l2h265enc": {"codec": "h265"},
                              "x264enc": {"codec": "h264"}, "x265enc": {"codec": "h265"}})
class Encoder(_EncodeProps, Element):
    """Encodes each stream's frames to H.264/H.265 (libx264/libx265). Frames pass on unchanged;
    the packets ride along in `batch.encoded` for filesink/rtspsink/udpsink."""

    description = "H.264/H.265 encoder (x264/x265; NVENC for GPU frames where the GPU has it)"

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.pool = EncoderPool(self)

    def handle_event(self, event: Event) -> None:
        if isinstance(event, StreamStart) and event.fps:
            self.pool.fps[event.source_id] = event.fps
        self.push(event)

    def process(self, batch: Batch) -> Batch:
        packets = self.pool.encode(batch)
        batch.encoded = (batch.encoded or []) + packets
        return batch

    def finish(self) -> Iterable[Batch]:
        rest = self.pool.flush()
        return [Batch([], encoded=rest)] if rest else []


@register("filesink")
class FileSink(_EncodeProps, Sink):
    """Writes video to a file: muxes packets from an upstream encoder, or encodes itself when
    there is none (with the codec/bitrate/crf properties). Use %d in `location` for one file per
    stream. Files are finalised on EOS, on error and on Ctrl-C."""

    description = "write MP4/MKV/MOV/TS or raw .h264/.h265"
    location = Prop(str, "out.mp4", "output path (.mp4 .mkv .mov .ts .h264 .h265); %d = source id")
    sync = Prop(bool, False, "accepted for GStreamer compatibility (files are never paced)")

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.muxers: dict[int, PacketMuxer] = {}
        self.pool = EncoderPool(self)
        self.paths: list[str] = []

    def start(self) -> None:
        container_format(self.location)
        d = os.path.dirname(os.path.abspath(self.location % 0 if "%d" in self.location else self.location))
        if not os.path.isdir(d):
            raise MediaError(f"{self.name}: output folder {d} does not exist")

    def handle_event(self, event: Event) -> None:
        if isinstance(event, StreamStart) and event.fps:
            self.pool.fps[event.source_id] = event.fps

    def _muxer(self, source_id: int) -> PacketMuxer:
        m = self.muxers.get(source_id)
        if m is None:
            if "%d" in self.location:
                path = self.location % source_id
            elif self.muxers:
                raise MediaError(f"{self.name}: frames of several streams reach one file; put a tiler "
                                 f"before the encoder, or use %d in location (e.g. out_%d.mp4)")
            else:
                path = self.location
            m = self.muxers[source_id] = PacketMuxer(path)
            self.paths.append(path)
        return m

    def process(self, batch: Batch) -> None:
        packets = batch.encoded if batch.encoded is not None else self.pool.encode(batch)
        for p in packets:
            self._muxer(p.source_id).write(p)

    def finish(self) -> Iterable[Batch]:
        for p in self.pool.flush():
            self._muxer(p.source_id).write(p)
        self._close()
        return ()

    def _close(self) -> None:
        for m in self.muxers.values():
            m.close()

    def stop(self) -> None:
        self._close()
