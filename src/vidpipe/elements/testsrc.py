"""videotestsrc: synthetic video for demos and tests (no file needed)."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..core.clock import Pacer
from ..core.element import Source
from ..core.events import Event, StreamEOS, StreamStart
from ..core.meta import Batch, Frame
from ..core.props import Prop
from ..core.registry import register

BARS = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0), (0, 0, 192)]


@register("videotestsrc")
class VideoTestSource(Source):
    """Patterns: smpte (colour bars), squares (red/green/blue squares moving on grey texture, the
    pattern the tests' detector finds), snow (noise), solid (one colour), black. A frame counter
    is drawn in the corner unless `counter` is off."""

    description = "synthetic test video"
    pattern = Prop(str, "squares", "what to draw", choices=["smpte", "squares", "snow", "solid", "black"])
    width = Prop(int, 640, "frame width", minimum=16)
    height = Prop(int, 360, "frame height", minimum=16)
    framerate = Prop(float, 25.0, "frames per second", minimum=0.1)
    num_buffers = Prop(int, -1, "frames to produce (-1: until stopped)")
    is_live = Prop(bool, False, "produce frames in real time, like a camera (slow consumers lose frames)")
    color = Prop(str, "255,0,0", "R,G,B for pattern=solid")
    seed = Prop(int, 0, "random seed for squares/snow")
    source_id = Prop(int, 0, "source id stamped on frames (streammux replaces it)")
    counter = Prop(bool, True, "draw the frame number in the top-left corner")

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self.is_live

    def start(self) -> None:
        from ..synthetic import background, default_squares
        self._squares = default_squares(self.width, self.height, self.seed)
        self._bg = background(self.width, self.height, self.seed)
        self._rng = np.random.default_rng(self.seed)
        if self.is_live and self.src_pad.peer is not None:
            self.src_pad.peer.leaky = True

    def _draw(self, n: int) -> np.ndarray:
        import cv2
        from ..synthetic import render

        w, h = self.width, self.height
        if self.pattern == "squares":
            img = render(n, w, h, self._squares, self._bg)
        elif self.pattern == "smpte":
            img = np.zeros((h, w, 3), np.uint8)
            for i, c in enumerate(BARS):
                img[:, i * w // 7:(i + 1) * w // 7] = c
        elif self.pattern == "snow":
            img = self._rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif self.pattern == "solid":
            img = np.empty((h, w, 3), np.uint8)
            img[:] = [int(v) for v in self.color.split(",")][:3]
        else:
            img = np.zeros((h, w, 3), np.uint8)
        if self.counter:
            cv2.putText(img, str(n), (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        return img

    def generate(self) -> Iterator[Batch | Event]:
        uri = f"videotestsrc://{self.pattern}"
        self.post("stream-added", f"stream {self.source_id}: {uri}", source_id=self.source_id, uri=uri,
                  width=self.width, height=self.height, fps=self.framerate)
        yield StreamStart(self.source_id, uri, self.framerate)
        pacer = Pacer()
        n = 0
        while self.num_buffers < 0 or n < self.num_buffers:
            pts = n / self.framerate
            if self.is_live:
                pacer.wait(pts, self._wake)
            if self._stop_requested():
                break
            yield Batch([Frame(self._draw(n), self.source_id, n, pts, source_uri=uri, source_size=(self.width, self.height))])
            n += 1
        self.post("stream-eos", f"stream {self.source_id} ended after {n} frames", source_id=self.source_id, frames=n)
        yield StreamEOS(self.source_id)
