"""vidpipe: real-time video analytics pipelines in Python (DeepStream's job, pip-installable)."""
from __future__ import annotations

from .core.bus import Bus, Message, MessageType
from .core.element import Element, Pad, PadProbeReturn, Sink, Source
from .core.meta import (Arrow, Batch, BBox, Circle, Classification, DisplayMeta, EncodedPacket, Frame,
                        FrameMeta, Label, Line, ObjectMeta, ObjectSet, Rect, TensorMeta, Text,
                        UNTRACKED_OBJECT_ID)
from .core.pipeline import Pipeline
from .core.props import Prop
from .core.registry import element_factories, make_element, register
from .errors import (AssetError, ConfigError, LinkError, MediaError, ModelError, PipelineError,
                     PropertyError, UnsupportedCodecError, VidpipeError)

__version__ = "0.1.0"

__all__ = [
    "Arrow", "AssetError", "Batch", "BBox", "Bus", "Circle", "Classification", "ConfigError", "DisplayMeta",
    "Element", "EncodedPacket", "Frame", "FrameMeta", "Label", "Line", "LinkError", "MediaError",
    "Message", "MessageType", "ModelError", "ObjectMeta", "ObjectSet", "Pad", "PadProbeReturn", "Pipeline",
    "PipelineError", "Prop", "PropertyError", "Rect", "Sink", "Source", "TensorMeta", "Text",
    "UNTRACKED_OBJECT_ID", "UnsupportedCodecError", "VidpipeError", "element_factories",
    "make_element", "register", "parse_launch",
]


def parse_launch(description: str) -> Pipeline:
    """Build a pipeline from a gst-launch-like string (see vidpipe.core.launch)."""
    from .core.launch import parse_launch as _parse
    return _parse(description)
