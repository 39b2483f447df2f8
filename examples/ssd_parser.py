#!/usr/bin/env python3
"""deepstream-ssd-parser in vidpipe: the model's raw output tensors are attached as meta
(output-tensor-meta=1, no built-in parsing) and a Python probe turns them into objects, with its
own thresholds and its own NMS - no C++ custom parser library.

    python examples/ssd_parser.py [clip.mp4] [--out out.mp4]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import vidpipe
from vidpipe import BBox, ObjectMeta, assets
from vidpipe.infer.labels import load_labels

SCORE_THRESHOLD = 0.4
IOU_THRESHOLD = 0.5


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> list[int]:
    """Plain greedy non-maximum suppression per class, written out."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            if classes[j] != classes[i]:
                rest.append(j)
                continue
            xx1, yy1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            xx2, yy2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter + 1e-9) <= iou_threshold:
                rest.append(j)
        order = rest
    return keep


class SsdParser:
    def __init__(self, labels: dict[int, str]):
        self.labels = labels

    def __call__(self, pad, batch):
        for frame in batch.frames:
            for tm in frame.meta.tensor_meta:
                t = tm.tensors
                boxes = t["TFLite_Detection_PostProcess"]      # [N, 4] ymin xmin ymax xmax, 0..1
                classes = t["TFLite_Detection_PostProcess:1"]  # [N]
                scores = t["TFLite_Detection_PostProcess:2"]   # [N]
                count = int(t["TFLite_Detection_PostProcess:3"])
                net_w, net_h = tm.network_size
                xyxy = np.stack([boxes[:count, 1] * net_w, boxes[:count, 0] * net_h,
                                 boxes[:count, 3] * net_w, boxes[:count, 2] * net_h], 1)
                # network pixels -> frame pixels
                xyxy[:, 0::2] = (xyxy[:, 0::2] - tm.pad[0]) / tm.scale[0]
                xyxy[:, 1::2] = (xyxy[:, 1::2] - tm.pad[1]) / tm.scale[1]
                s = scores[:count]
                good = np.nonzero(s >= SCORE_THRESHOLD)[0]
                for i in (good[k] for k in nms(xyxy[good], s[good], classes[:count][good], IOU_THRESHOLD)):
                    x1, y1, x2, y2 = np.clip(xyxy[i], 0, [frame.width, frame.height] * 2)
                    cid = int(classes[i])
                    frame.objects.append(ObjectMeta(cid, BBox(float(x1), float(y1), float(x2 - x1), float(y2 - y1)),
                                                    float(s[i]), self.labels.get(cid, str(cid)),
                                                    component_id=tm.component_id))


def build(uri: str, out: str | None) -> vidpipe.Pipeline:
    from vidpipe.flow import Flow
    cfg = assets.default_infer_config()
    cfg.parser = "none"              # no built-in parsing ...
    cfg.output_tensor_meta = True    # ... the raw tensors ride along as frame.meta.tensor_meta
    flow = Flow().capture(uri).infer(cfg, name="primary-inference").probe(SsdParser(load_labels(cfg.labelfile_path)))
    flow.osd()
    if out:
        flow.encode(out)
    return flow.build()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="video file (default: the default clip)")
    ap.add_argument("--out", default="ssd_parser_out.mp4", help="output MP4 ('' for none)")
    args = ap.parse_args(argv)
    return build(args.input or assets.default_clip(), args.out or None).run_app()


if __name__ == "__main__":
    sys.exit(main())
