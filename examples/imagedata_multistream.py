#!/usr/bin/env python3
"""deepstream-imagedata-multistream in vidpipe: several streams batched; a probe reads the
pixels and, every N frames, saves each stream's annotated frame and a crop of every detected
object to a folder as JPEG. With --device cuda the frames stay on the GPU (torch tensors): crops
are tensor slices and the JPEGs are encoded by nvJPEG; only the compressed bytes are copied back.

    python examples/imagedata_multistream.py a.mp4 b.mp4 --folder frames --every 30
    python examples/imagedata_multistream.py a.mp4 --device cuda --config nanodet.txt
"""
from __future__ import annotations

import argparse
import os
import sys

import vidpipe
from vidpipe import assets
from vidpipe.media.image import save_jpeg


class FrameSaver:
    def __init__(self, folder: str, every: int):
        self.folder, self.every = folder, every
        self.saved: list[str] = []

    def _path(self, frame, suffix: str) -> str:
        d = os.path.join(self.folder, f"stream_{frame.source_id}")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"frame_{frame.frame_num:05d}{suffix}.jpg")

    def _write(self, path: str, rgb) -> None:
        self.saved.append(save_jpeg(path, rgb))  # OpenCV for numpy, nvJPEG for CUDA tensors

    def crops(self, pad, batch):
        """Before osd: crops of the clean pixels."""
        for frame in batch.frames:
            if frame.frame_num % self.every or not frame.objects:
                continue
            img = frame.image  # HxWx3 RGB: numpy, or a torch CUDA tensor with --device cuda
            for k, obj in enumerate(frame.objects):
                x1, y1, x2, y2 = (int(round(v)) for v in obj.bbox.as_xyxy())
                if x2 > x1 and y2 > y1:
                    self._write(self._path(frame, f"_obj{k}_{obj.label or obj.class_id}"), img[y1:y2, x1:x2])

    def frames(self, pad, batch):
        """After osd: the annotated frame."""
        for frame in batch.frames:
            if frame.frame_num % self.every == 0 and frame.objects:
                self._write(self._path(frame, ""), frame.image)


def build(uris: list[str], folder: str, every: int, config: str | None,
          device: str = "cpu") -> tuple[vidpipe.Pipeline, FrameSaver]:
    from vidpipe.flow import Flow
    saver = FrameSaver(folder, every)
    flow = Flow(batch_size=len(uris), device=device).capture(*uris)
    flow.infer(config or assets.default_infer_config()).probe(saver.crops)
    flow.osd().probe(saver.frames).sink("fakesink")
    return flow.build(), saver


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="video files or URIs (default: the default clip twice)")
    ap.add_argument("--folder", default="imagedata_out", help="where the JPEGs go")
    ap.add_argument("--every", type=int, default=30, help="save every N-th frame of each stream")
    ap.add_argument("--config", help="nvinfer config file (default: the default detector)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda[:N] to decode, infer and draw on the GPU")
    args = ap.parse_args(argv)
    uris = args.inputs or [assets.default_clip()] * 2
    pipeline, saver = build(uris, args.folder, args.every, args.config, args.device)
    rc = pipeline.run_app()
    print(f"saved {len(saver.saved)} images under {args.folder}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
