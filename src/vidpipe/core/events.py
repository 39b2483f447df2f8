"""In-band events that travel through pads between batches."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class EOS(Event):
    """End of stream on this pad: nothing follows."""


@dataclass(frozen=True, slots=True)
class StreamStart(Event):
    source_id: int
    uri: str = ""
    fps: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamEOS(Event):
    """One stream of a batched flow ended (the flow itself goes on)."""

    source_id: int
