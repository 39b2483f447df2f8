"""Scenes with known trajectories for tracker tests: per frame, ground-truth ids and boxes, and
the detections a detector would give (noisy, some dropped)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Obj:
    gt_id: int
    start: int
    end: int          # last frame (inclusive)
    x: float
    y: float
    vx: float
    vy: float
    w: float = 40
    h: float = 80
    cls: int = 0

    def box(self, t: int) -> tuple[float, float, float, float]:
        dt = t - self.start
        x, y = self.x + self.vx * dt, self.y + self.vy * dt
        return (x, y, x + self.w, y + self.h)


def render(objs: list[Obj], frames: int, *, drop: float = 0.0, jitter: float = 0.0, seed: int = 0,
           hidden: dict[int, range] | None = None, score: float = 0.9):
    """Returns [(gt: {id: box}, dets: [(box, score, cls, gt_id)])] per frame. `hidden` maps a gt id
    to the frames where it is occluded (no detection, still in ground truth)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        gt, dets = {}, []
        for o in objs:
            if not o.start <= t <= o.end:
                continue
            b = o.box(t)
            gt[o.gt_id] = b
            if hidden and t in hidden.get(o.gt_id, ()):
                continue
            if rng.random() < drop:
                continue
            nb = tuple(v + rng.normal(0, jitter) for v in b) if jitter else b
            dets.append((nb, score, o.cls, o.gt_id))
        out.append((gt, dets))
    return out


def random_scene(n_objects: int, frames: int, seed: int, width: int = 1280, height: int = 720,
                 speed: float = 3.0) -> list[Obj]:
    """Pedestrian-like objects entering and leaving at random times, moving at constant speed."""
    rng = np.random.default_rng(seed)
    objs = []
    for i in range(n_objects):
        start = int(rng.integers(0, frames // 2))
        end = int(min(frames - 1, start + rng.integers(frames // 4, frames)))
        objs.append(Obj(i, start, end, float(rng.uniform(0, width - 60)), float(rng.uniform(0, height - 120)),
                        float(rng.uniform(-speed, speed)), float(rng.uniform(-speed / 2, speed / 2)), float(rng.uniform(30, 60)),
                        float(rng.uniform(60, 120))))
    return objs
