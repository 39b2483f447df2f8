"""osd: draws objects (box, label, confidence, classifier labels) and display meta (nvdsosd's role)."""
from __future__ import annotations

import numpy as np

from ..core.element import Element
from ..core.meta import Batch, Frame
from ..core.props import Prop
from ..core.registry import register
from ..media.overlay import FONT, class_color, object_caption, object_marks, paste

__all__ = ["Osd", "draw_frame", "class_color", "object_caption"]


def draw_frame(frame: Frame, *, border_width: int = 2, font_scale: float = 0.45,
               show_label: bool = True, show_conf: bool = True, marks: list | None = None) -> None:
    """Draws a frame's objects (or the precomputed `marks` of them, see object_marks) and its
    display meta, on the frame's own device."""
    if not (frame.has_rgb and isinstance(frame.image, np.ndarray)):  # a tensor, or NV12 from the GPU
        from ..gpu.draw import draw_frame as draw_on_device
        draw_on_device(frame, border_width=border_width, font_scale=font_scale, show_label=show_label,
                       show_conf=show_conf)
        return
    img = frame.image
    if marks is None:
        objs = frame.objects
        marks = object_marks(objs, np.full(len(objs), img.shape[1]), border_width=border_width,
                             font_scale=font_scale, show_label=show_label, show_conf=show_conf)
    for outline, color, patch, (lx, ly) in marks:
        for bx1, by1, bx2, by2 in outline:
            img[max(by1, 0):max(by2, 0), max(bx1, 0):max(bx2, 0)] = color
        if patch is not None:
            paste(img, patch, lx, ly)
    _draw_display_meta(img, frame.meta.display_meta)


def _draw_display_meta(img: np.ndarray, dm) -> None:
    import cv2
    font = FONT
    if not dm:
        return
    for r in dm.rects:
        p1 = (int(r.left), int(r.top))
        p2 = (int(r.left + r.width), int(r.top + r.height))
        if r.fill is not None:
            cv2.rectangle(img, p1, p2, tuple(r.fill[:3]), -1)
        if r.border_width > 0:
            cv2.rectangle(img, p1, p2, tuple(r.color[:3]), r.border_width)
    for ln in dm.lines:
        cv2.line(img, (int(ln.x1), int(ln.y1)), (int(ln.x2), int(ln.y2)), tuple(ln.color[:3]), ln.width)
    for a in dm.arrows:
        cv2.arrowedLine(img, (int(a.x1), int(a.y1)), (int(a.x2), int(a.y2)), tuple(a.color[:3]), a.width)
    for c in dm.circles:
        cv2.circle(img, (int(c.x), int(c.y)), int(c.radius), tuple(c.color[:3]), c.width)
    for t in dm.texts:
        (tw, th), base = cv2.getTextSize(t.text, font, t.font_scale, 1)
        x, y = int(t.x), int(t.y) + th
        if t.background is not None:
            cv2.rectangle(img, (x - 2, y - th - 2), (x + tw + 2, y + base), tuple(t.background[:3]), -1)
        cv2.putText(img, t.text, (x, y), font, t.font_scale, tuple(t.color[:3]), 1, cv2.LINE_AA)


@register("osd", aliases={"nvdsosd": {}, "nvosd": {}})
class Osd(Element):
    """Draws boxes in per-class colours with label and confidence, then the frame's display meta."""

    description = "on-screen display: boxes, labels, display meta"
    border_width = Prop(int, 2, "box line width in pixels", minimum=1, maximum=20)
    font_scale = Prop(float, 0.45, "label text scale (OpenCV Hershey font)", minimum=0.1)
    display_text = Prop(bool, True, "draw labels next to boxes")
    display_conf = Prop(bool, True, "show confidence in labels")
    process_mode = Prop(int, 0, "accepted for DeepStream compatibility (frames are drawn where they live: "
                        "numpy on the CPU, torch tensors on their GPU)")

    def process(self, batch: Batch) -> Batch:
        style = {"border_width": self.border_width, "font_scale": self.font_scale,
                 "show_label": self.display_text, "show_conf": self.display_conf}
        frames = batch.frames
        per_frame: list[list] = [[] for _ in frames]
        on_host = all(f.has_rgb and isinstance(f.image, np.ndarray) for f in frames)
        objs = batch.objects
        if on_host and len(objs):  # every object's marks from the batch's columns at once
            fidx = objs.frame
            widths = np.asarray([f.width for f in frames])[fidx]
            for k, m in zip(fidx.tolist(), object_marks(objs, widths, **style)):
                per_frame[k].append(m)
        if on_host or any(f.has_rgb and isinstance(f.image, np.ndarray) for f in frames):
            for frame, marks in zip(frames, per_frame):
                draw_frame(frame, marks=marks if on_host else None, **style)
        else:  # torch frames: one upload of the batch's pixels
            from ..gpu.draw import draw_batch
            draw_batch(frames, **style)
        return batch
