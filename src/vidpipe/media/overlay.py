"""What osd draws for objects, computed from the object columns once for the CPU and GPU osd:
colours, captions, box outlines as bands, and cached caption images."""
from __future__ import annotations

import colorsys
from functools import lru_cache
from typing import Any

import numpy as np

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


@lru_cache(maxsize=1024)
def class_color(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per class id (golden-ratio hue walk)."""
    h = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return (int(r * 255), int(g * 255), int(b * 255))


def object_caption(obj: Any, show_conf: bool) -> str:
    """One object's label: "label id conf classifier-labels"."""
    return _caption(obj.label, obj.class_id, obj.object_id, obj.confidence, obj.classifications, show_conf)


def _caption(label: str, class_id: int, object_id: int, conf: float, classifications: Any, show_conf: bool) -> str:
    parts = [label or str(class_id)]
    if object_id >= 0:
        parts.append(str(object_id))
    if show_conf:
        parts.append(f"{conf:.2f}")
    for c in classifications or ():
        top = c.top
        if top is not None:
            parts.append(top.label)
    return " ".join(parts)


def captions(objs: Any, show_conf: bool) -> list[str]:
    """Captions of an ObjectSet, read from its columns."""
    return [_caption(*row, show_conf) for row in zip(objs.label.tolist(), objs.class_id.tolist(),
                                                      objs.object_id.tolist(), objs.confidence.tolist(),
                                                      objs.data("classifications").tolist())]


def colors(objs: Any) -> list[tuple[int, int, int]]:
    """Each object's colour: its own (obj.color) or its class colour."""
    return [tuple(int(v) for v in c[:3]) if c is not None else class_color(k)
            for c, k in zip(objs.data("color").tolist(), objs.class_id.tolist())]


def bands(boxes: np.ndarray, width: int) -> np.ndarray:
    """Integer boxes [N,4] (already rounded) -> their outlines as four filled bands each, [N,4,4]
    (x1, y1, x2, y2 exclusive), `width` pixels thick and centred on the box edges. The CPU and GPU
    osd both draw these."""
    t = max(1, int(width))
    lo = t // 2
    x1, y1, x2, y2 = (boxes[:, k:k + 1] - lo for k in range(4))
    return np.stack([np.concatenate(p, 1) for p in (
        (x1, y1, x2 + t, y1 + t), (x1, y2, x2 + t, y2 + t), (x1, y1, x1 + t, y2 + t), (x2, y1, x2 + t, y2 + t))], 1)


def rounded(objs: Any) -> np.ndarray:
    """Boxes rounded to whole pixels as osd draws them (round half to even, as Python's round)."""
    return np.rint(objs.xyxy.astype(np.float64)).astype(np.int64).reshape(-1, 4)


@lru_cache(maxsize=4096)
def label_patch(text: str, color: tuple[int, int, int], font_scale: float) -> tuple[np.ndarray, int, int, int]:
    """A caption image: a filled box in the object's colour with black anti-aliased text, and the
    text's (width, height, baseline). Cached: the same caption is rendered once."""
    import cv2
    (tw, th), base = cv2.getTextSize(text, FONT, font_scale, 1)
    img = np.empty((th + 2 * base, tw + 3, 3), np.uint8)
    img[:] = color[:3]
    cv2.putText(img, text, (1, th + base - 1), FONT, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    img.setflags(write=False)
    return img, tw, th, base


def label_origin(x1: int, y1: int, frame_w: int, tw: int, th: int, base: int) -> tuple[int, int]:
    """Top-left of a caption image: above the box, inside it when there is no room above, and
    shifted left to stay inside the frame."""
    ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base
    return max(0, min(x1, frame_w - tw - 2)), ty - th - base


def paste(img: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """Copies `patch` into `img` at (x0, y0), clipped to the image."""
    h, w = img.shape[:2]
    ph, pw = patch.shape[:2]
    cx1, cy1 = max(0, -x0), max(0, -y0)
    cx2, cy2 = min(pw, w - x0), min(ph, h - y0)
    if cx2 > cx1 and cy2 > cy1:
        img[y0 + cy1:y0 + cy2, x0 + cx1:x0 + cx2] = patch[cy1:cy2, cx1:cx2]


def object_marks(objs: Any, frame_widths: Any, *, border_width: int, font_scale: float, show_label: bool,
                 show_conf: bool) -> list[tuple[list, tuple[int, int, int], Any, tuple[int, int]]]:
    """What osd draws for each object of an ObjectSet, computed from its columns in one pass:
    (outline bands, colour, caption image or None, caption top-left). `frame_widths` gives each
    object's frame width (captions are kept inside the frame)."""
    if not len(objs):
        return []
    boxes = rounded(objs)
    outline = bands(boxes, border_width).tolist()
    cols = colors(objs)
    if not show_label:
        return [(outline[k], c, None, (0, 0)) for k, c in enumerate(cols)]
    texts = captions(objs, show_conf)
    x1s, y1s, ws = boxes[:, 0].tolist(), boxes[:, 1].tolist(), np.asarray(frame_widths).tolist()
    out = []
    for k, c in enumerate(cols):
        patch, tw, th, base = label_patch(texts[k], c, font_scale)
        out.append((outline[k], c, patch, label_origin(x1s[k], y1s[k], ws[k], tw, th, base)))
    return out
