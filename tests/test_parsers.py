"""Each parser against tensors whose decoded answer is known."""
import numpy as np
import pytest

from vidpipe.errors import ModelError
from vidpipe.infer.backends.base import TensorInfo
from vidpipe.infer.cluster import dbscan, iou_matrix, nms
from vidpipe.infer.parsers import ParseContext, get_parser

F = np.float32


def ti(name, shape):
    return TensorInfo(name, tuple(shape), np.dtype(F))


def run(name, infos, outputs, ctx):
    p = get_parser(name)
    p.check(infos, ctx)
    return p.parse(outputs, 0, ctx)


def test_ssd_tflite():
    ctx = ParseContext(300, 300, min_score=0.3)
    boxes = np.zeros((1, 10, 4), F)
    boxes[0, 0] = [0.1, 0.2, 0.5, 0.6]  # ymin xmin ymax xmax
    boxes[0, 1] = [0.0, 0.0, 1.0, 1.0]
    out = {"TFLite_Detection_PostProcess": boxes, "TFLite_Detection_PostProcess:1": np.array([[0, 2] + [0] * 8], F),
           "TFLite_Detection_PostProcess:2": np.array([[0.9, 0.8] + [0] * 8], F),
           "TFLite_Detection_PostProcess:3": np.array([2], F)}
    infos = [ti(k, v.shape) for k, v in out.items()]
    d = run("ssd-tflite", infos, out, ctx)
    np.testing.assert_allclose(d.xyxy, [[60, 30, 180, 150], [0, 0, 300, 300]], atol=1e-4)
    assert d.classes.tolist() == [0, 2] and d.scores.tolist() == pytest.approx([0.9, 0.8])


def test_yolov8_raw_head():
    ctx = ParseContext(640, 640, num_classes=3, min_score=0.25)
    x = np.zeros((1, 7, 5), F)
    x[0, :4, 1] = [100, 200, 40, 60]   # cx cy w h
    x[0, 4 + 2, 1] = 0.9               # class 2
    x[0, :4, 3] = [300, 300, 10, 10]
    x[0, 4 + 0, 3] = 0.2               # below threshold
    d = run("yolov8", [ti("output0", x.shape)], {"output0": x}, ctx)
    np.testing.assert_allclose(d.xyxy, [[80, 170, 120, 230]])
    assert d.classes.tolist() == [2] and d.scores.tolist() == pytest.approx([0.9])


def test_yolov5_objectness_times_class():
    ctx = ParseContext(640, 640, num_classes=2, min_score=0.25)
    x = np.zeros((1, 3, 7), F)
    x[0, 0] = [50, 50, 20, 20, 0.8, 0.1, 0.5]   # 0.8*0.5 = 0.4 class 1
    x[0, 1] = [10, 10, 4, 4, 0.2, 0.9, 0.0]     # 0.18 below
    x[0, 2] = [200, 100, 10, 30, 0.9, 0.9, 0.2]  # 0.81 class 0
    d = run("yolov5", [ti("out", x.shape)], {"out": x}, ctx)
    np.testing.assert_allclose(d.xyxy, [[40, 40, 60, 60], [195, 85, 205, 115]])
    assert d.classes.tolist() == [1, 0] and d.scores.tolist() == pytest.approx([0.4, 0.81])


def test_yolox_grid_decoding():
    ctx = ParseContext(64, 64, num_classes=1, min_score=0.5)
    n = 8 * 8 + 4 * 4 + 2 * 2
    x = np.zeros((1, n, 6), F)
    # stride 16 level starts at 64; cell (row 1, col 2) = index 64 + 1*4 + 2
    i = 64 + 4 + 2
    x[0, i] = [0.5, 0.25, np.log(2.0), 0.0, 1.0, 0.7]
    d = run("yolox", [ti("output", x.shape)], {"output": x}, ctx)
    cx, cy, w, h = (2 + 0.5) * 16, (1 + 0.25) * 16, 2 * 16, 1 * 16
    np.testing.assert_allclose(d.xyxy, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], atol=1e-4)
    assert d.scores.tolist() == pytest.approx([0.7])


def test_yolo_end_to_end_both_layouts():
    ctx = ParseContext(640, 640, min_score=0.5)
    x = np.array([[[1, 2, 30, 40, 0.9, 5], [0, 0, 1, 1, 0.1, 1]]], F)
    d = run("yolo-e2e", [ti("output0", x.shape)], {"output0": x}, ctx)
    np.testing.assert_allclose(d.xyxy, [[1, 2, 30, 40]])
    assert d.classes.tolist() == [5]
    out = {"num_dets": np.array([[1]], np.int32), "det_boxes": np.array([[[5, 6, 7, 8], [0, 0, 0, 0]]], F),
           "det_scores": np.array([[0.8, 0.0]], F), "det_classes": np.array([[3, 0]], np.int32)}
    infos = [ti("num_dets", (1, 1)), ti("det_boxes", (1, 2, 4)), ti("det_scores", (1, 2)), ti("det_classes", (1, 2))]
    d = run("yolo-e2e", infos, out, ctx)
    np.testing.assert_allclose(d.xyxy, [[5, 6, 7, 8]])
    assert d.classes.tolist() == [3] and d.scores.tolist() == pytest.approx([0.8])


def test_nanodet_distribution_decoding():
    ctx = ParseContext(64, 64, num_classes=2, min_score=0.5)
    reg = 4  # bins 0..3
    outs, infos = {}, []
    for k, s in enumerate((8, 16, 32)):
        n = (64 // s) ** 2
        sc = np.zeros((1, n, 2), F)
        bx = np.full((1, n, 4 * reg), -50, F)
        if s == 16:
            cell = 1 * 4 + 3  # row 1, col 3: centre (56, 24)
            sc[0, cell, 1] = 0.95
            # one-hot distributions: left=1, top=2, right=0, bottom=3 bins
            for side, b in enumerate((1, 2, 0, 3)):
                bx[0, cell, side * reg + b] = 50
        outs[f"cls{k}"], outs[f"box{k}"] = sc, bx
        infos += [ti(f"cls{k}", sc.shape), ti(f"box{k}", bx.shape)]
    d = run("nanodet", infos, outs, ctx)
    np.testing.assert_allclose(d.xyxy, [[56 - 16, 24 - 32, 56 + 0, 24 + 48]], atol=1e-3)
    assert d.classes.tolist() == [1] and d.scores.tolist() == pytest.approx([0.95])


def test_detectnet_v2_grid():
    ctx = ParseContext(64, 32, min_score=0.5)
    cov = np.zeros((1, 2, 2, 4), F)   # 2 classes, grid 2x4 -> stride 16
    bbox = np.zeros((1, 8, 2, 4), F)
    cov[0, 1, 1, 2] = 0.8             # class 1 at row 1 col 2
    gx, gy = (2 * 16 + 0.5) / 35, (1 * 16 + 0.5) / 35
    want = np.array([30.0, 10.0, 50.0, 30.0])
    bbox[0, 4:8, 1, 2] = [gx - want[0] / 35, gy - want[1] / 35, want[2] / 35 - gx, want[3] / 35 - gy]
    d = run("detectnet_v2", [ti("cov", cov.shape), ti("bbox", bbox.shape)], {"cov": cov, "bbox": bbox}, ctx)
    np.testing.assert_allclose(d.xyxy, [want], atol=1e-3)
    assert d.classes.tolist() == [1]


def test_classifier_softmax():
    ctx = ParseContext(16, 16)
    logits = np.array([[1.0, 3.0, 0.0]], F)
    p = run("classifier", [ti("logits", (1, 3))], {"logits": logits}, ctx)
    e = np.exp(logits[0] - 3)
    np.testing.assert_allclose(p, e / e.sum(), rtol=1e-5)
    probs = np.array([[0.2, 0.8]], F)
    np.testing.assert_allclose(run("classifier", [ti("p", (1, 2))], {"p": probs}, ctx), [0.2, 0.8])


def test_mismatch_lists_the_models_tensors():
    ctx = ParseContext(300, 300)
    with pytest.raises(ModelError) as e:
        get_parser("ssd-tflite").check([ti("output0", (1, 84, 8400))], ctx)
    msg = str(e.value)
    assert "output0 [1,84,8400] float32" in msg and "boxes [1,N,4]" in msg and "nanodet" in msg


def test_nms_per_class_and_iou():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], F)
    scores = np.array([0.9, 0.8, 0.7, 0.6], F)
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    assert nms(boxes, scores, 0.5, np.array([0, 0, 1, 0])).tolist() == [0, 2, 3]
    assert iou_matrix(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)


def test_dbscan_merges_clusters_and_drops_noise():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [0, 1, 10, 10], [100, 100, 110, 110]], F)
    scores = np.array([0.5, 0.25, 0.25, 0.9], F)
    b, s, c = dbscan(boxes, scores, eps=0.3, min_boxes=2)
    assert len(b) == 1 and s.tolist() == pytest.approx([0.5])
    np.testing.assert_allclose(b[0], [0, 0.25, 10, 10.5], atol=1e-4)
