"""Synthetic clips with known moving shapes, for tests, demos and benchmarks.

Every square has a saturated colour (red, green, blue, ...) on a grey textured background, so a
colour-threshold "detector" finds exactly the known boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLORS = {0: ("red", (230, 25, 25)), 1: ("green", (25, 220, 25)), 2: ("blue", (30, 30, 230)),
          3: ("yellow", (230, 220, 25)), 4: ("magenta", (220, 25, 220)), 5: ("cyan", (25, 220, 220))}


@dataclass(frozen=True)
class Square:
    class_id: int
    size: int
    start: tuple[float, float]     # top-left at frame 0
    velocity: tuple[float, float]  # pixels per frame

    def box(self, t: int, width: int, height: int) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) at frame t, bouncing inside the frame."""
        def bounce(p0: float, v: float, lim: int) -> int:
            span = lim - self.size
            p = (p0 + v * t) % (2 * span) if span > 0 else 0
            return int(round(p if p <= span else 2 * span - p))
        x = bounce(self.start[0], self.velocity[0], width)
        y = bounce(self.start[1], self.velocity[1], height)
        return (x, y, x + self.size, y + self.size)


def default_squares(width: int, height: int, seed: int = 0) -> list[Square]:
    """Three squares (red, green, blue), each in its own horizontal band so they never overlap,
    moving left/right at different speeds and bouncing off the edges."""
    rng = np.random.default_rng(seed)
    s = max(16, min(width, height) // 6)
    band = height / 3
    out = []
    for cid in range(3):
        y = cid * band + float(rng.uniform(0, max(band - s, 0)))
        start = (float(rng.uniform(0, width - s)), y)
        vel = (float(rng.uniform(2, 6)) * rng.choice([-1, 1]), 0.0)
        out.append(Square(cid, s, start, vel))
    return out


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Grey texture (R = G = B) so no background pixel looks like a coloured square."""
    import cv2

    rng = np.random.default_rng(seed + 1000)
    noise = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    g = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    g = (70 + (g.astype(np.float32) / 255.0) * 110).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    g[((xx // 32 + yy // 32) % 2 == 0)] += 8
    return np.repeat(g[:, :, None], 3, axis=2)


def render(t: int, width: int, height: int, squares: list[Square], bg: np.ndarray) -> np.ndarray:
    img = bg.copy()
    for sq in squares:
        x1, y1, x2, y2 = sq.box(t, width, height)
        img[y1:y2, x1:x2] = COLORS[sq.class_id][1]
    return img


def write_video(path: str, images, *, width: int, height: int, fps: float = 25.0, codec: str = "h264",
                crf: int = 12, bitrate: int = 0, preset: str = "veryfast", keyint: int = 0, tune: str = "") -> None:
    """Encodes RGB frames (any iterable) into a video file; the file is finalised even on error."""
    from .media.writer import PacketMuxer, VideoEncoder

    enc = VideoEncoder(codec, width=width, height=height, fps=fps, crf=crf, bitrate=bitrate, preset=preset,
                       keyint=keyint, tune=tune)
    mux = PacketMuxer(path)
    try:
        for t, img in enumerate(images):
            for p in enc.encode(img, t / fps):
                mux.write(p)
        for p in enc.flush():
            mux.write(p)
    finally:
        mux.close()


def make_clip(path: str, *, frames: int = 30, width: int = 320, height: int = 240, fps: float = 25.0,
              squares: list[Square] | None = None, seed: int = 0, codec: str = "h264", crf: int = 12,
              bitrate: int = 0, preset: str = "veryfast") -> list[dict[int, tuple[int, int, int, int]]]:
    """Writes the clip and returns the ground truth: per frame, class_id -> (x1, y1, x2, y2)."""
    squares = squares if squares is not None else default_squares(width, height, seed)
    bg = background(width, height, seed)
    write_video(path, (render(t, width, height, squares, bg) for t in range(frames)), width=width,
                height=height, fps=fps, codec=codec, crf=crf, bitrate=bitrate, preset=preset)
    return [{sq.class_id: sq.box(t, width, height) for sq in squares} for t in range(frames)]


def stamp_number(image: np.ndarray, n: int, bits: int = 12, block: int = 16) -> np.ndarray:
    """Writes n into the top row as `bits` black/white blocks (survives lossy coding)."""
    for b in range(bits):
        image[:block, b * block:(b + 1) * block] = 255 if n >> b & 1 else 0
    return image


def read_number(image: np.ndarray, bits: int = 12, block: int = 16) -> int:
    """The number stamp_number wrote."""
    n = 0
    for b in range(bits):
        if image[2:block - 2, b * block + 2:(b + 1) * block - 2].mean() > 127:
            n |= 1 << b
    return n
