"""Plumbing: identity/queue, and DeepStream/GStreamer names that need no work here."""
from __future__ import annotations

from ..core.element import Element
from ..core.meta import Batch
from ..core.props import Prop
from ..core.registry import register

# Elements whose job vidpipe does elsewhere (parsing/demuxing/decoding happen in the source,
# muxing in filesink, chosen by the file extension;
# colour conversion is not needed because frames are always RGB). Kept so that DeepStream
# launch lines run unchanged; each is a pass-through.
_PASS_THROUGH = ("h264parse", "h265parse", "qtdemux", "matroskademux", "decodebin", "nvv4l2decoder",
                 "nvvideoconvert", "nvvidconv", "videoconvert", "capsfilter", "qtmux", "mp4mux", "matroskamux")


@register("identity", aliases={n: {} for n in _PASS_THROUGH})
class Identity(Element):
    """Passes batches through unchanged (a place to hang probes)."""

    description = "pass-through"
    silent = Prop(bool, True, "accepted for GStreamer compatibility")
    caps = Prop(str, "", "accepted for capsfilter compatibility (ignored)")

    def process(self, batch: Batch) -> Batch:
        return batch


@register("queue")
class Queue(Element):
    """A thread boundary with its own bounded queue; leaky=2 drops the oldest when full."""

    description = "thread boundary / buffer"
    max_size_buffers = Prop(int, 4, "batches held", minimum=1)
    leaky = Prop(int, 0, "0: block upstream, 2: drop oldest (downstream)", choices=[0, 1, 2])

    def start(self) -> None:
        from ..core.fifo import Fifo
        pad = self.sink_pads["sink"]
        pad.queue = Fifo(self.max_size_buffers)
        pad.leaky = self.leaky != 0

    def process(self, batch: Batch) -> Batch:
        return batch
