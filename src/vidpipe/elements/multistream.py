"""Many streams: tiler (nvmultistreamtiler), demux (nvstreamdemux), tee."""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np

from ..core.element import Element, Pad, request_pad_index
from ..core.events import EOS, Event, StreamEOS, StreamStart
from ..core.meta import Batch, DisplayMeta, Frame, FrameMeta
from ..core.objects import ObjectTable
from ..core.props import Prop
from ..core.registry import register
from ..errors import LinkError
from ..core.tensors import is_tensor


@register("tiler", aliases={"nvmultistreamtiler": {}})
class Tiler(Element):
    """Composes the frames of a batch into one grid frame: stream k goes to cell k (row-major).
    Objects and display meta are scaled into their cell, so osd after the tiler draws them.
    A cell keeps its stream's last picture until a new one arrives, with that picture's objects
    and display meta (a batch without some stream does not strip its cell's overlay)."""

    description = "compose streams into a grid"
    rows = Prop(int, 0, "grid rows (0: from the number of streams)", minimum=0)
    columns = Prop(int, 0, "grid columns (0: from the number of streams)", minimum=0)
    width = Prop(int, 1280, "output width", minimum=16)
    height = Prop(int, 720, "output height", minimum=16)
    show_source = Prop(int, -1, "show only this stream, full size (-1: the grid)", minimum=-1)

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self._sources: set[int] = set()
        self._canvas: np.ndarray | None = None
        self._canvas_kind = ""
        self._n = 0
        self._fps = 0.0
        self._started = False
        self._held: dict[int, tuple] = {}  # source -> (its cell's objects, display meta) as last shown

    def _put_nv12(self, f: Frame, x: int, y: int, w: int, h: int) -> None:
        """A frame's NV12 planes resized into its cell of the NV12 canvas (chroma at half size)."""
        from ..gpu.draw import resize_planes
        luma, chroma = _nv12_planes(self._canvas, self.width, self.height)
        src = f.nv12.to(self._canvas.device)
        src_luma, src_chroma = _nv12_planes(src, f.width, f.height)
        luma[y:y + h, x:x + w] = resize_planes(src_luma[None], w, h)[0]
        cy0, cy1, cx0, cx1 = y // 2, (y + h) // 2, x // 2, (x + w) // 2
        if cy1 > cy0 and cx1 > cx0:
            chroma[cy0:cy1, cx0:cx1] = resize_planes(src_chroma.permute(2, 0, 1), cx1 - cx0, cy1 - cy0).permute(1, 2, 0)

    def grid(self) -> tuple[int, int]:
        n = max(len(self._sources), max(self._sources, default=0) + 1, 1)
        cols = self.columns or (math.ceil(n / self.rows) if self.rows else math.ceil(math.sqrt(n)))
        rows = self.rows or math.ceil(n / cols)
        return rows, cols

    def handle_event(self, event: Event) -> None:
        if isinstance(event, StreamStart):
            self._sources.add(event.source_id)
            self._fps = max(self._fps, event.fps)
            if not self._started:
                self._started = True
                self.push(StreamStart(0, "tiler", event.fps))
        elif isinstance(event, StreamEOS):
            pass  # the tiled stream goes on while any stream does

    def cell(self, source_id: int) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of a stream's cell, or None when it is not shown."""
        if self.show_source >= 0:
            return (0, 0, self.width, self.height) if source_id == self.show_source else None
        rows, cols = self.grid()
        r, c = divmod(source_id, cols)
        if r >= rows:
            return None
        x0, x1 = c * self.width // cols, (c + 1) * self.width // cols
        y0, y1 = r * self.height // rows, (r + 1) * self.height // rows
        return (x0, y0, x1 - x0, y1 - y0)

    def process(self, batch: Batch) -> Batch | None:
        import cv2

        if not batch.frames:
            return batch
        f0 = batch.frames[0]
        on_gpu = is_tensor(f0.image if f0.has_rgb or f0.nv12 is None else f0.nv12)
        # frames still NV12 on the GPU (nothing asked for RGB) are tiled as NV12: never converted
        nv12 = on_gpu and self.width % 2 == 0 and self.height % 2 == 0 and \
            all(not f.has_rgb and f.nv12 is not None for f in batch.frames)
        kind = "nv12" if nv12 else ("tensor" if on_gpu else "numpy")
        if self._canvas is None or self._canvas_kind != kind:
            if nv12:
                import torch
                self._canvas = torch.full((self.height * 3 // 2, self.width), 128, dtype=torch.uint8,
                                          device=f0.nv12.device)
                self._canvas[:self.height] = 16  # black
            elif on_gpu:
                import torch
                self._canvas = torch.zeros((self.height, self.width, 3), dtype=torch.uint8, device=f0.image.device)
            else:
                self._canvas = np.zeros((self.height, self.width, 3), np.uint8)
            self._canvas_kind = kind
        meta = FrameMeta()
        dm = meta.display_meta
        src_table = batch.table
        shown_rows, shown_scale, shown_src = [], [], []
        self._sources.update(f.source_id for f in batch.frames)  # the grid before any cell is placed
        for f in batch.frames:
            cell = self.cell(f.source_id)
            if cell is None:
                continue
            x, y, w, h = cell
            if nv12:
                self._put_nv12(f, x, y, w, h)
            elif on_gpu:
                from ..gpu.draw import resize_rgb
                self._canvas[y:y + h, x:x + w] = resize_rgb(f.image.to(self._canvas.device), w, h)
            else:
                img = f.to_numpy()
                self._canvas[y:y + h, x:x + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[1] > w else cv2.INTER_LINEAR)
            sx, sy = w / f.width, h / f.height
            rows = src_table.rows_of(f._slot)
            shown_rows.append(rows)
            shown_scale.append(np.broadcast_to(np.asarray([sx, sy, x, y], np.float64), (len(rows), 4)))
            cell_dm = DisplayMeta()
            _map_display(f.meta.display_meta, cell_dm, sx, sy, x, y)
            _extend_display(dm, cell_dm)
            shown_src.append((f.source_id, cell_dm))
            meta.tensor_meta.extend(f.meta.tensor_meta)
            meta.inferred_by.extend(i for i in f.meta.inferred_by if i not in meta.inferred_by)
            meta.user_meta.setdefault("tiled_sources", []).append(f.source_id)
        canvas = self._canvas.clone() if on_gpu else self._canvas.copy()
        out = Frame(None if nv12 else canvas, 0, self._n, max(f.pts_seconds for f in batch.frames), meta,
                    created_at=min(f.created_at for f in batch.frames), nv12=canvas if nv12 else None)
        t = None
        if shown_rows:  # every shown object, its box mapped into its cell with one scale and offset
            rows = np.concatenate(shown_rows)
            t = src_table.take(rows, 0)
            k = np.concatenate(shown_scale)
            xyxy = t.cols["xyxy"][:t.n]
            xyxy[:] = xyxy * np.concatenate([k[:, :2], k[:, :2]], 1) + np.concatenate([k[:, 2:], k[:, 2:]], 1)
            start = 0
            for (sid, cell_dm), r in zip(shown_src, shown_rows):  # what each cell now shows, kept
                self._held[sid] = (t.take(np.arange(start, start + len(r)), 0), cell_dm)
                start += len(r)
        in_batch = {sid for sid, _ in shown_src}
        held = [(sid, h) for sid, h in self._held.items() if sid not in in_batch and self.cell(sid) is not None]
        for _, (_, cell_dm) in held:  # cells this batch did not refresh keep their overlay
            _extend_display(dm, cell_dm)
        parts = ([(t, np.arange(t.n), 0)] if t is not None else []) + \
            [(ht, np.arange(ht.n), 0) for _, (ht, _) in held if ht.n]
        if parts:
            out._table = ObjectTable.concat(parts) if len(parts) > 1 else parts[0][0]
        self._n += 1
        return Batch([out], user_meta=batch.user_meta)


def _nv12_planes(nv12, width: int, height: int):
    """An NV12 tensor [H*3/2, W] as its luma [H, W] and interleaved chroma [H/2, W/2, 2] views."""
    return nv12[:height], nv12[height:height + height // 2].view(height // 2, width // 2, 2)


def _extend_display(dst: DisplayMeta, src: DisplayMeta) -> None:
    dst.texts += src.texts
    dst.rects += src.rects
    dst.lines += src.lines
    dst.arrows += src.arrows
    dst.circles += src.circles


def _map_display(src: DisplayMeta, dst: DisplayMeta, sx: float, sy: float, x: float, y: float) -> None:
    """A frame's display meta scaled into its tiler cell (texts, rects, lines, arrows, circles)."""
    dst.texts += [replace(t, x=x + t.x * sx, y=y + t.y * sy) for t in src.texts]
    dst.rects += [replace(r, left=x + r.left * sx, top=y + r.top * sy, width=r.width * sx, height=r.height * sy)
                  for r in src.rects]
    dst.lines += [replace(ln, x1=x + ln.x1 * sx, y1=y + ln.y1 * sy, x2=x + ln.x2 * sx, y2=y + ln.y2 * sy)
                  for ln in src.lines]
    dst.arrows += [replace(a, x1=x + a.x1 * sx, y1=y + a.y1 * sy, x2=x + a.x2 * sx, y2=y + a.y2 * sy)
                   for a in src.arrows]
    dst.circles += [replace(c, x=x + c.x * sx, y=y + c.y * sy, radius=c.radius * min(sx, sy)) for c in src.circles]


class _RequestSrcPads(Element):
    """Elements with request src pads src_0, src_1, ..."""

    src_pad_names = ()
    src_optional = True

    def request_pad(self, name: str = "src_%u") -> Pad:
        index = request_pad_index(self, name, "src", self.src_pads)
        pad = Pad(self, f"src_{index}", "src")
        self.src_pads[pad.name] = pad
        return pad

    def get_static_pad(self, name: str) -> Pad:
        if name.startswith("src_") and name not in self.src_pads:
            return self.request_pad(name)
        return super().get_static_pad(name)

    def start(self) -> None:
        if not self.src_pads:
            raise LinkError(f"{self.factory_name} '{self.name}' has no outputs: link it (e.g. 'd.src_0 ! ...')")


@register("tee")
class Tee(_RequestSrcPads):
    """Sends every batch to all its src pads. Branches share the batch unless `copy` is set (then
    each branch after the first gets its own copy of the pixels and metadata)."""

    description = "fan out to several branches"
    copy = Prop(bool, False, "give each branch its own copy (branches that draw do not affect others)")

    def push(self, item, pad: str = "src") -> None:
        pads = list(self.src_pads.values())
        for i, p in enumerate(pads):
            if self.copy and i > 0 and isinstance(item, Batch):
                p.push(copy.deepcopy(item))
            else:
                p.push(item)


@register("demux", aliases={"nvstreamdemux": {}})
class Demux(_RequestSrcPads):
    """Splits a batched flow back into streams: frames of source k leave through src_k (one-frame
    batches); the stream's EOS ends that pad. Frames of streams with no pad are dropped."""

    description = "one branch per stream"

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self._ended: set[str] = set()

    def process(self, batch: Batch) -> None:
        for f in batch.frames:
            p = self.src_pads.get(f"src_{f.source_id}")
            if p is not None and p.name not in self._ended:
                p.push(Batch([f]))

    def handle_event(self, event: Event) -> None:
        if isinstance(event, (StreamStart, StreamEOS)):
            p = self.src_pads.get(f"src_{event.source_id}")
            if p is not None and p.name not in self._ended:
                p.push(event)
                if isinstance(event, StreamEOS):
                    p.push(EOS())
                    self._ended.add(p.name)

    def push(self, item, pad: str = "src") -> None:
        if isinstance(item, EOS):  # the end of everything: end the pads still open
            for p in self.src_pads.values():
                if p.name not in self._ended:
                    p.push(item)
                    self._ended.add(p.name)
