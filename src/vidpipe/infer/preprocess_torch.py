"""Frames (torch tensors, HxWx3 uint8 RGB) -> the model's input batch, on their device.

Same geometry and arithmetic as infer/preprocess.py (which it extends): bilinear resize with
half-pixel centres like OpenCV's INTER_LINEAR, rounded to whole values as OpenCV's uint8 result
is, optional letterbox, colour order, (x - offsets) * net-scale-factor, layout. Frames of the
same size are resized as one batch (one kernel per step, whatever the number of streams).
"""
from __future__ import annotations

from .preprocess import Preprocessor, Transform


class TorchPreprocessor(Preprocessor):
    def __init__(self, info, cfg, device, dtype):
        super().__init__(info, cfg)
        import torch
        self.torch = torch
        self.device = torch.device(device)
        self.out_dtype = dtype
        self._offsets = torch.as_tensor(self.offsets, dtype=torch.float32, device=self.device)

    def _as_tensor(self, img):
        torch = self.torch
        if not isinstance(img, torch.Tensor):
            from ..core.tensors import transfers
            t = torch.from_numpy(img)
            if self.device.type != "cpu":
                transfers.h2d(t.numel())
            return t.to(self.device, non_blocking=True)
        return img if img.device == self.device else img.to(self.device)

    def _geometry(self, iw: int, ih: int) -> tuple[int, int, int, int]:
        W, H = self.width, self.height
        if not self.keep_aspect:
            return W, H, 0, 0
        s = min(W / iw, H / ih)
        nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
        px = (W - nw) // 2 if self.symmetric else 0
        py = (H - nh) // 2 if self.symmetric else 0
        return nw, nh, px, py

    def _resize(self, x, nw: int, nh: int):
        """x: [n, 3, h, w] float32 -> [n, 3, nh, nw], whole values like OpenCV's uint8 output."""
        import torch.nn.functional as F
        if x.shape[-2:] == (nh, nw):
            return x
        return F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                             antialias=False).round_().clamp_(0, 255)

    def __call__(self, images, rois=None):
        torch = self.torch
        n = len(images)
        canvas = torch.zeros((n, 3, self.height, self.width), dtype=torch.float32, device=self.device)
        transforms: list[Transform | None] = [None] * n
        imgs = [self._as_tensor(im) for im in images]
        if rois is None:
            groups: dict[tuple, list[int]] = {}
            for i, im in enumerate(imgs):
                groups.setdefault(tuple(im.shape), []).append(i)
            for shape, idx in groups.items():
                ih, iw = shape[:2]
                nw, nh, px, py = self._geometry(iw, ih)
                x = torch.stack([imgs[i] for i in idx]) if len(idx) > 1 else imgs[idx[0]][None]
                x = self._resize(x.permute(0, 3, 1, 2).float(), nw, nh)
                if len(idx) == n and (px, py, nw, nh) == (0, 0, self.width, self.height):
                    canvas = x if x.is_contiguous() else x.contiguous()
                else:
                    canvas[idx, :, py:py + nh, px:px + nw] = x
                t = Transform(nw / iw, nh / ih, px, py)
                for i in idx:
                    transforms[i] = t
        else:
            for i, (im, (x1, y1, x2, y2)) in enumerate(zip(imgs, rois)):
                crop = im[y1:y2, x1:x2]
                ih, iw = crop.shape[:2]
                nw, nh, px, py = self._geometry(iw, ih)
                canvas[i, :, py:py + nh, px:px + nw] = self._resize(crop.permute(2, 0, 1)[None].float(), nw, nh)[0]
                transforms[i] = Transform(nw / iw, nh / ih, px, py, x1, y1)
        return self._finish(canvas), transforms  # type: ignore[return-value]

    def crops(self, images, fidx, rois):
        """Object crops -> the model input in one step, whatever their number: images are the
        batch's frames (RGB tensors), fidx each crop's frame, rois its (x1, y1, x2, y2) in whole
        pixels. The bilinear sample positions and weights of every crop are computed as arrays and
        gathered from the stacked frames at once (four gathers), with the arithmetic of
        F.interpolate on the cropped tensor (half-pixel centres, edges clamped to the crop), so
        the result matches __call__(images, rois), which resizes each crop with its own launches,
        to within one grey level (rounding of the last bit).
        Frames of different sizes are handled per size."""
        torch = self.torch
        imgs = [self._as_tensor(im) for im in images]
        k = len(fidx)
        out = torch.zeros((k, 3, self.height, self.width), dtype=torch.float32, device=self.device)
        transforms: list[Transform | None] = [None] * k
        rois = [tuple(int(v) for v in r) for r in rois]
        groups: dict[tuple, list[int]] = {}
        for j, f in enumerate(fidx):
            groups.setdefault(tuple(imgs[f].shape), []).append(j)
        for js in groups.values():
            frames = sorted({int(fidx[j]) for j in js})
            slot = {f: i for i, f in enumerate(frames)}
            stack = torch.stack([imgs[f] for f in frames]) if len(frames) > 1 else imgs[frames[0]][None]
            geo = []
            for j in js:
                x1, y1, x2, y2 = rois[j]
                nw, nh, px, py = self._geometry(x2 - x1, y2 - y1)
                geo.append((slot[int(fidx[j])], x1, y1, x2 - x1, y2 - y1, nw, nh, px, py))
                transforms[j] = Transform(nw / (x2 - x1), nh / (y2 - y1), px, py, x1, y1)
            out[js] = self._sample(stack, torch.tensor(geo, dtype=torch.int64, device=self.device))
        return self._finish(out), transforms

    def _sample(self, stack, geo):
        """stack [F, H, W, 3] uint8; geo [K, 9] = (frame, x1, y1, iw, ih, nw, nh, px, py) ->
        [K, 3, net h, net w] float32, zero outside each crop's placement (letterbox)."""
        torch = self.torch
        f, x1, y1, iw, ih, nw, nh, px, py = geo.T

        def axis(n_out: int, start, size, new, pad):
            """Per crop and output index along one axis: first/second source index, their
            weights, and whether the output index is inside the placed crop (as upsample_bilinear2d)."""
            d = torch.arange(n_out, device=self.device)[None] - pad[:, None]           # [K, n_out]
            inside = (d >= 0) & (d < new[:, None])
            scale = size.float()[:, None] / new.float()[:, None]
            src = (scale * (d.float() + 0.5) - 0.5).clamp_(min=0)
            i0 = src.long()
            step = (i0 < size[:, None] - 1).long()
            lam1 = src - i0
            lam0 = 1 - lam1
            i0 = i0.minimum(size[:, None] - 1)  # outside the placed crop: any valid index (weighted 0)
            return start[:, None] + i0, start[:, None] + i0 + step, lam0, lam1, inside
        xa, xb, w0, w1, xin = axis(self.width, x1, iw, nw, px)
        ya, yb, h0, h1, yin = axis(self.height, y1, ih, nh, py)
        W = stack.shape[2]
        flat = stack.reshape(-1, 3)
        base = f[:, None, None] * (stack.shape[1] * W)

        def at(ys, xs):
            return flat[(base + ys[:, :, None] * W + xs[:, None, :]).reshape(-1)].reshape(
                len(f), self.height, self.width, 3).float()
        wa, wb = w0[:, None, :, None], w1[:, None, :, None]
        val = (h0[:, :, None, None] * (wa * at(ya, xa) + wb * at(ya, xb))
               + h1[:, :, None, None] * (wa * at(yb, xa) + wb * at(yb, xb)))
        val = val.round_().clamp_(0, 255) * (yin[:, :, None] & xin[:, None, :])[..., None]
        return val.permute(0, 3, 1, 2)

    def from_nv12(self, nv12s):
        """Whole frames given as NV12 [H*3/2, W] tensors -> the model input: frames of one size are
        stacked, their planes resized to the network size and converted together (a few launches
        per batch; no full-size RGB image is made). Not rounded to whole grey levels, unlike the
        RGB path: within about one level of it."""
        torch = self.torch
        n = len(nv12s)
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(nv12s):
            groups.setdefault(tuple(t.shape), []).append(i)
        if len(groups) == 1:
            x = torch.stack(nv12s) if n > 1 else nv12s[0][None]
            return self.from_nv12_stacked(x.to(self.device))
        canvas = torch.zeros((n, 3, self.height, self.width), dtype=torch.float32, device=self.device)
        transforms: list[Transform | None] = [None] * n
        for idx in groups.values():
            x = torch.stack([nv12s[i] for i in idx]) if len(idx) > 1 else nv12s[idx[0]][None]
            canvas, t = self._place_nv12(x.to(self.device), canvas, idx)
            for i in idx:
                transforms[i] = t
        return self._finish_nv12(canvas), transforms

    def from_nv12_stacked(self, x):
        """NV12 frames of one size stacked [N, H*3/2, W] on the device -> (model input, transforms)."""
        canvas, t = self._place_nv12(x, None, list(range(len(x))))
        return self._finish_nv12(canvas), [t] * len(x)

    def _place_nv12(self, x, canvas, idx: list[int]):
        """Resizes and converts a same-size NV12 stack into its place on the canvas (None: the
        stack is the whole batch, the canvas is made here); returns it and the group's transform."""
        from ..gpu.color import nv12_batch_to_rgb_resized
        ih, iw = x.shape[1] * 2 // 3, x.shape[2]
        nw, nh, px, py = self._geometry(iw, ih)
        rgb = nv12_batch_to_rgb_resized(x, nh, nw)
        if canvas is None and (px, py, nw, nh) == (0, 0, self.width, self.height):
            canvas = rgb
        elif canvas is None:  # letterboxed: slices only (no index tensor, so it can be captured)
            canvas = self.torch.zeros((len(x), 3, self.height, self.width), dtype=self.torch.float32,
                                      device=self.device)
            canvas[:, :, py:py + nh, px:px + nw] = rgb
        else:
            canvas[idx, :, py:py + nh, px:px + nw] = rgb
        return canvas, Transform(nw / iw, nh / ih, px, py)

    def _finish_nv12(self, canvas):
        if self.dtype.kind in "ui":  # integer models get whole values, as from the RGB path
            canvas = canvas.round_()
        return self._finish(canvas)

    def _finish(self, canvas):
        """float RGB [N, 3, H, W] at the network size -> colour order, scale/offsets, dtype, layout."""
        torch = self.torch
        x = canvas
        if self.color == 1:
            x = x.flip(1)
        elif self.color == 2:  # OpenCV's RGB -> GRAY weights, rounded like its uint8 result
            w = torch.tensor([0.299, 0.587, 0.114], device=self.device).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True).round_()
        if self.dtype.kind == "u":
            x = x.to(torch.uint8)
        elif self.dtype.kind == "i":
            x = (x - 128).to(torch.int8)
        else:
            if not self.plain:
                x = (x - self._offsets.view(1, -1, 1, 1)) * float(self.scale)
            x = x.to(self.out_dtype)
        if self.layout == "NHWC":
            x = x.permute(0, 2, 3, 1)
        return x.contiguous()
