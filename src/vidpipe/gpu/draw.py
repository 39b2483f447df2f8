"""Drawing on frames that live on the GPU (osd, tiler, streammux scaling).

osd: every box, label and display-meta shape is turned on the host into a list of opaque pixels
(flat index, RGB) - labels and shapes are rendered with the same OpenCV calls as the CPU osd into
small patches, boxes are bands - then the frame gets one upload of that list and one scatter. Where
shapes overlap, the one drawn last wins (resolved on the device, so the result does not depend on
the scatter's order). Text without a background is drawn opaque where OpenCV's anti-aliased
coverage is at least half.

Frames still in NV12 (decoded on the GPU) get their RGB image first, the batch in one conversion;
their NV12 copy, which no longer matches the drawn image, is dropped. Box bands travel as
rectangles; their pixels are made on the device.
"""
from __future__ import annotations

import threading

import numpy as np

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX


class _Pixels:
    """Collects (flat index, rgb) runs for one HxW frame, each with its rank in drawing order
    (runs may be collected out of order: all box bands of a frame are made in one step)."""

    def __init__(self, width: int, height: int):
        self.w, self.h = width, height
        self.idx: list[np.ndarray] = []
        self.rgb: list[np.ndarray] = []
        self.ranks: list[np.ndarray] = []
        self.bands: list[tuple] = []  # rectangles whose pixels are made on the device
        # patches placed whole (captions): rectangles too, their pixels' indices and keys made on
        # the device, their colours taken from `patch_rgb`: (x1, y1, width, count, rank, offset)
        self.patch_rects: list[tuple[int, int, int, int, int, int]] = []
        self.patch_rgb: list[np.ndarray] = []
        self.patch_n = 0
        self.next_rank = 0

    def take_rank(self) -> int:
        self.next_rank += 1
        return self.next_rank - 1

    def _add(self, idx: np.ndarray, rgb: np.ndarray) -> None:
        """One run, ranked after every run so far."""
        self.idx.append(idx)
        self.rgb.append(rgb)
        self.ranks.append(np.full(len(idx), self.take_rank(), np.int64))

    def rects(self, boxes: np.ndarray, colors: np.ndarray, ranks: np.ndarray) -> None:
        """Filled rectangles [K, 4] (x2/y2 exclusive, clipped), colours [K, 3], ranks [K], at once.
        Kept as rectangles: their pixels are made on the device (see arrays and expand_bands)."""
        x1, x2 = np.clip(boxes[:, 0], 0, self.w), np.clip(boxes[:, 2], 0, self.w)
        y1, y2 = np.clip(boxes[:, 1], 0, self.h), np.clip(boxes[:, 3], 0, self.h)
        bw, bh = np.maximum(x2 - x1, 0), np.maximum(y2 - y1, 0)
        self.bands.append((x1, y1, bw, bw * bh, np.asarray(colors, np.uint8).reshape(-1, 3), ranks))

    def rect(self, x1: int, y1: int, x2: int, y2: int, color) -> None:
        """Filled rectangle, x2/y2 exclusive, clipped to the frame."""
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, self.w), min(y2, self.h)
        if x2 <= x1 or y2 <= y1:
            return
        rows = np.arange(y1, y2, dtype=np.int64)[:, None] * self.w
        idx = (rows + np.arange(x1, x2, dtype=np.int64)[None, :]).ravel()
        self._add(idx, np.broadcast_to(np.asarray(color[:3], np.uint8), (len(idx), 3)))

    def patch(self, x0: int, y0: int, img: np.ndarray, mask: np.ndarray | None = None) -> None:
        """An RGB patch placed at (x0, y0); only where mask is set when a mask is given."""
        ph, pw = img.shape[:2]
        cx1, cy1 = max(0, -x0), max(0, -y0)
        cx2, cy2 = min(pw, self.w - x0), min(ph, self.h - y0)
        if cx2 <= cx1 or cy2 <= cy1:
            return
        img = img[cy1:cy2, cx1:cx2]
        if mask is None:  # a whole rectangle: the device makes its indices (expand_bands)
            n = img.shape[0] * img.shape[1]
            self.patch_rects.append((cx1 + x0, cy1 + y0, cx2 - cx1, n, self.take_rank(), self.patch_n))
            self.patch_rgb.append(np.ascontiguousarray(img).reshape(-1, 3))
            self.patch_n += n
            return
        idx = (np.arange(cy1 + y0, cy2 + y0, dtype=np.int64)[:, None] * self.w
               + np.arange(cx1 + x0, cx2 + x0, dtype=np.int64)[None, :]).ravel()
        m = mask[cy1:cy2, cx1:cx2].ravel()
        self._add(idx[m], img.reshape(-1, 3)[m])

    def shape(self, draw, x1: int, y1: int, x2: int, y2: int, color, aa_text: bool = False) -> None:
        """Rasterises `draw(mask, ox, oy)` (OpenCV calls on a uint8 mask) over a bounding region."""
        pad = 2
        x1, y1 = max(int(x1) - pad, 0), max(int(y1) - pad, 0)
        x2, y2 = min(int(x2) + pad + 1, self.w), min(int(y2) + pad + 1, self.h)
        if x2 <= x1 or y2 <= y1:
            return
        mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
        draw(mask, x1, y1)
        on = mask >= 128 if aa_text else mask > 0
        img = np.empty((y2 - y1, x2 - x1, 3), np.uint8)
        img[:] = color[:3]
        self.patch(x1, y1, img, on)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(flat indices, RGB, keys) of the pixels made here, and the rectangles whose pixels the
        device makes (expand_bands): x1, y1, width, count (pixels), colour, the key of each one's
        first pixel, and src: where a patch's pixels start in "patch_rgb" (-1: one colour). The
        frame's writes are these pixels, then the rectangles' pixels in order; of a pixel's writes
        the one with the largest key wins, and key % (number of writes) is a write's position in
        that order (see paint)."""
        idx = np.concatenate(self.idx) if self.idx else np.zeros(0, np.int64)
        rgb = np.ascontiguousarray(np.concatenate(self.rgb)) if self.rgb else np.zeros((0, 3), np.uint8)
        ranks = np.concatenate(self.ranks) if self.ranks else np.zeros(0, np.int64)
        groups = [(*b, np.full(len(b[0]), -1, np.int64)) for b in self.bands]
        if self.patch_rects:
            x1, y1, w, n, rank, src = np.array(self.patch_rects, np.int64).T
            groups.append((x1, y1, w, n, np.zeros((len(x1), 3), np.uint8), rank, src))
        x1, y1, bw, count, color, branks, src = (np.concatenate([g[j] for g in groups]) if groups else
                                                 np.zeros((0, 3) if j == 4 else 0, np.uint8 if j == 4 else np.int64)
                                                 for j in range(7))
        total = len(idx) + int(count.sum())
        key = ranks * total + np.arange(len(idx))
        first = len(idx) + np.cumsum(count) - count  # each rectangle's first pixel's position
        bands = {"x1": x1.astype(np.int64), "y1": y1.astype(np.int64), "width": bw.astype(np.int64),
                 "count": count.astype(np.int64), "color": color,
                 "key": (branks.astype(np.int64) * total + first).astype(np.int64), "src": src.astype(np.int64),
                 "patch_rgb": np.concatenate(self.patch_rgb) if self.patch_rgb else np.zeros((0, 3), np.uint8)}
        return idx, rgb, key, bands


def expand_bands(bands: dict, frame_width):
    """The rectangles' pixels, made on the device from their corners: (flat indices, RGB, keys),
    rectangle after rectangle, row by row. `bands`: tensors as returned by _Pixels.arrays
    (several frames' rectangles may be concatenated, "src" then counting into their joined
    "patch_rgb"), `frame_width` a tensor, per rectangle; their total pixel count must be
    bands["total"] (an int, known on the host: no sync)."""
    import torch
    count, total = bands["count"], bands["total"]
    k = len(count)
    rid = torch.repeat_interleave(torch.arange(k, device=count.device), count, output_size=total)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(total, device=count.device) - start[rid]
    w = bands["width"][rid]
    fw = frame_width[rid]
    idx = (bands["y1"][rid] + local // w) * fw + bands["x1"][rid] + local % w
    color = bands["color"][rid]
    patch_rgb = bands["patch_rgb"]
    if len(patch_rgb):  # patches: each pixel's own colour
        src = bands["src"][rid]
        patched = src >= 0
        own = patch_rgb[torch.where(patched, src + local, 0)]  # one-colour rectangles read pixel 0
        color = torch.where(patched[:, None], own, color)
    return idx, color, bands["key"][rid] + local


def overlay_pixels(frame, *, border_width: int = 2, font_scale: float = 0.45, show_label: bool = True,
                   show_conf: bool = True) -> tuple:
    """What osd draws on `frame`: see _Pixels.arrays."""
    import cv2

    from ..media.overlay import object_marks
    h, w = frame.height, frame.width
    px = _Pixels(w, h)
    objs = frame.objects
    band_boxes, band_colors, band_ranks = [], [], []
    for outline, color, patch, origin in object_marks(objs, np.full(len(objs), w), border_width=border_width,
                                                      font_scale=font_scale, show_label=show_label,
                                                      show_conf=show_conf):
        for band in outline:  # all boxes' bands are made in one step below, in their place in the order
            band_boxes.append(band)
            band_colors.append(color[:3])
            band_ranks.append(px.take_rank())
        if patch is not None:
            px.patch(*origin, patch)
    px.rects(np.asarray(band_boxes, np.int64).reshape(-1, 4), np.asarray(band_colors, np.uint8).reshape(-1, 3),
             np.asarray(band_ranks, np.int64))
    dm = frame.meta.display_meta
    if dm:
        for r in dm.rects:
            x1, y1 = int(r.left), int(r.top)
            x2, y2 = int(r.left + r.width), int(r.top + r.height)
            if r.fill is not None:
                px.rect(x1, y1, x2 + 1, y2 + 1, r.fill)
            if r.border_width > 0:
                bw = r.border_width
                px.shape(lambda m, ox, oy: cv2.rectangle(m, (x1 - ox, y1 - oy), (x2 - ox, y2 - oy), 255, bw),
                         x1 - bw, y1 - bw, x2 + bw, y2 + bw, r.color)
        for ln in dm.lines:
            a, b = (int(ln.x1), int(ln.y1)), (int(ln.x2), int(ln.y2))
            px.shape(lambda m, ox, oy, a=a, b=b, lw=ln.width: cv2.line(m, (a[0] - ox, a[1] - oy), (b[0] - ox, b[1] - oy), 255, lw),
                     min(a[0], b[0]) - ln.width, min(a[1], b[1]) - ln.width, max(a[0], b[0]) + ln.width,
                     max(a[1], b[1]) + ln.width, ln.color)
        for ar in dm.arrows:
            a, b = (int(ar.x1), int(ar.y1)), (int(ar.x2), int(ar.y2))
            reach = int(0.1 * np.hypot(b[0] - a[0], b[1] - a[1])) + ar.width
            px.shape(lambda m, ox, oy, a=a, b=b, lw=ar.width: cv2.arrowedLine(m, (a[0] - ox, a[1] - oy), (b[0] - ox, b[1] - oy), 255, lw),
                     min(a[0], b[0]) - reach, min(a[1], b[1]) - reach, max(a[0], b[0]) + reach,
                     max(a[1], b[1]) + reach, ar.color)
        for c in dm.circles:
            cx, cy, rad = int(c.x), int(c.y), int(c.radius)
            reach = rad + max(c.width, 1)
            px.shape(lambda m, ox, oy, cx=cx, cy=cy, rad=rad, lw=c.width: cv2.circle(m, (cx - ox, cy - oy), rad, 255, lw),
                     cx - reach, cy - reach, cx + reach, cy + reach, c.color)
        for tx in dm.texts:
            (tw, th), base = cv2.getTextSize(tx.text, _FONT, tx.font_scale, 1)
            x, y = int(tx.x), int(tx.y) + th
            if tx.background is not None:  # opaque box: rendered exactly as on the CPU
                img = np.empty((th + base + 3, tw + 5, 3), np.uint8)
                img[:] = tx.background[:3]
                cv2.putText(img, tx.text, (2, th + 2), _FONT, tx.font_scale, tuple(tx.color[:3]), 1, cv2.LINE_AA)
                px.patch(x - 2, y - th - 2, img)
                continue
            px.shape(lambda m, ox, oy, s=tx.text, x=x, y=y, fs=tx.font_scale: cv2.putText(
                m, s, (x - ox, y - oy), _FONT, fs, 255, 1, cv2.LINE_AA),
                x, y - th, x + tw, y + base, tx.color, aa_text=True)
    return px.arrays()


_winner_buf = threading.local()  # per thread (two osd elements may draw at once), freed with it


def paint(image, idx, rgb, key) -> None:
    """Writes pixels into `image` (torch [H, W, 3] uint8): flat indices, RGB and keys, tensors on
    the image's device (see _Pixels.arrays). Of a pixel's writes the one with the largest key wins
    (key % len(idx) is the write's position). Nothing waits for the device: every write of a
    pixel carries its winner's colour, so duplicate writes agree."""
    import torch
    dev = image.device
    n = image.shape[0] * image.shape[1]
    bufs = getattr(_winner_buf, "bufs", None)
    if bufs is None:
        bufs = _winner_buf.bufs = {}
    win = bufs.get((str(dev), n))
    if win is None:
        win = bufs[(str(dev), n)] = torch.empty(n, dtype=torch.int64, device=dev)
    win.index_fill_(0, idx, -1)             # only the pixels written here
    win.scatter_reduce_(0, idx, key, reduce="amax")
    image.view(n, 3)[idx] = rgb[win[idx] % len(idx)]


_staging = threading.local()  # per thread: (pinned host buffer, event after its last copy out)


def _upload(arrays: list[np.ndarray], dev) -> list:
    """The arrays' bytes to `dev` in one copy through a pinned buffer kept for the next batch
    (allocating pinned memory per batch cost the osd thread a fifth of its time). Returns uint8
    device tensors, one per array, each starting at a multiple of 8 bytes."""
    import torch
    spans, total = [], 0
    for a in arrays:
        spans.append((total, a.nbytes))
        total += -(-a.nbytes // 8) * 8
    host, done = getattr(_staging, "buf", (None, None))
    if done is not None:
        done.synchronize()  # the previous batch's copy out of the buffer (long finished, as a rule)
    if host is None or host.numel() < total:
        host, done = torch.empty(max(total * 3 // 2, 1 << 16), dtype=torch.uint8, pin_memory=True), torch.cuda.Event()
    flat = host.numpy()
    for a, (off, n) in zip(arrays, spans):
        flat[off:off + n] = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
    with torch.cuda.device(dev):
        d = host[:total].to(dev, non_blocking=True)
        done.record()
    _staging.buf = (host, done)
    return [d[off:off + n] for off, n in spans]


def draw_frame(frame, **style) -> None:
    """osd on a torch frame."""
    draw_batch([frame], **style)


def draw_batch(frames, **style) -> None:
    """osd on a batch's torch frames: each frame's pixels worked out on the host, one upload for
    the batch (pinned), then a few launches per frame."""
    import torch

    from . import transfers
    from .color import make_rgb
    make_rgb(frames)  # NV12-only frames converted together
    parts, imgs = [], []
    for f in frames:
        img = f.image
        if not img.is_contiguous():
            f.image = img = img.contiguous()
        f.nv12 = None  # drawn on the RGB image: the NV12 copy would be stale
        parts.append(overlay_pixels(f, **style))
        imgs.append(img)
    host_n = [len(p[0]) for p in parts]
    band_n = [int(p[3]["count"].sum()) for p in parts]
    if not sum(host_n) + sum(band_n):
        return
    dev = imgs[0].device
    bands = [p[3] for p in parts]
    # one upload: the host-made pixels' indices and keys, the rectangles (corners, sizes, keys,
    # their frame's width, where their patch pixels start), then the uint8 colours
    patch_base = np.cumsum([0] + [len(b["patch_rgb"]) for b in bands[:-1]])
    arrays = [np.concatenate([p[0] for p in parts]), np.concatenate([p[2] for p in parts])]
    arrays += [np.concatenate([b[k] for b in bands]) for k in ("x1", "y1", "width", "count", "key")]
    arrays.append(np.concatenate([np.full(len(b["count"]), f.width, np.int64) for b, f in zip(bands, frames)]))
    arrays.append(np.concatenate([np.where(b["src"] >= 0, b["src"] + o, -1) for b, o in zip(bands, patch_base.tolist())]))
    arrays += [np.concatenate([p[1] for p in parts]).reshape(-1), np.concatenate([b["color"] for b in bands]).reshape(-1),
               np.concatenate([b["patch_rgb"] for b in bands]).reshape(-1)]
    if dev.type != "cpu":
        transfers.h2d(sum(a.nbytes for a in arrays))
        t = _upload(arrays, dev)
        t = [x.view(torch.int64) for x in t[:9]] + [x.view(-1, 3) for x in t[9:]]
    else:
        t = [torch.from_numpy(a) for a in arrays[:9]] + [torch.from_numpy(a).view(-1, 3) for a in arrays[9:]]
    ti, tk, bx1, by1, bw, bcount, bkey, bfw, bsrc, tc, bcolor, prgb = t
    made = (ti, tc, tk)
    if sum(band_n):  # every rectangle's pixels of the batch, made on the device at once
        made_b = expand_bands({"x1": bx1, "y1": by1, "width": bw, "count": bcount, "key": bkey, "color": bcolor,
                               "src": bsrc, "patch_rgb": prgb, "total": sum(band_n)}, bfw)
    hs = bs = 0
    for img, nh, nb in zip(imgs, host_n, band_n):
        if nh and nb:  # the frame's writes: its host-made pixels, then its rectangles' pixels
            part = [torch.cat([a[hs:hs + nh], b[bs:bs + nb]]) for a, b in zip(made, made_b)]
        elif nb:
            part = [b[bs:bs + nb] for b in made_b]
        else:
            part = [a[hs:hs + nh] for a in made]
        if nh or nb:
            paint(img, *part)
        hs += nh
        bs += nb


def resize_planes(planes, width: int, height: int):
    """[C, H, W] uint8 tensor -> [C, height, width]: bilinear below 2x shrink, area averaging
    beyond (as resize_rgb and the CPU tiler)."""
    import torch
    import torch.nn.functional as F
    ih, iw = planes.shape[1:]
    if (iw, ih) == (width, height):
        return planes
    mode = "area" if (iw > width and ih > height) else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    y = F.interpolate(planes[None].float(), size=(height, width), mode=mode, **kw)
    return y.round_().clamp_(0, 255).to(torch.uint8)[0]


def resize_rgb(img, width: int, height: int, *, pad: bool = False):
    """[H, W, 3] uint8 tensor -> [height, width, 3]; pad keeps the aspect ratio (black, top-left),
    like the CPU streammux. Bilinear below 2x shrink, area averaging beyond (as the tiler on the CPU)."""
    import torch
    import torch.nn.functional as F
    ih, iw = img.shape[:2]
    if (iw, ih) == (width, height):
        return img
    nw, nh = width, height
    if pad:
        s = min(width / iw, height / ih)
        nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    x = img.permute(2, 0, 1)[None].float()
    mode = "area" if (iw > nw and ih > nh) else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False}
    y = F.interpolate(x, size=(nh, nw), mode=mode, **kw).round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
    if not pad:
        return y.contiguous()
    out = torch.zeros((height, width, 3), dtype=torch.uint8, device=img.device)
    out[:nh, :nw] = y
    return out
