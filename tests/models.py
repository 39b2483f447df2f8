"""ONNX models built in code whose outputs are known exactly."""
from __future__ import annotations

import numpy as np


def _onnx():
    import onnx
    from onnx import TensorProto, helper
    return onnx, TensorProto, helper


def color_square_detector(path: str, width: int, height: int, *, classes: int = 3,
                          layout: str = "e2e") -> str:
    """A 'detector' that finds, per colour class, the box around all pixels of that saturated
    colour (red=0, green=1, blue=2). Input float [N,3,H,W] RGB in 0..1 (net-scale-factor 1/255).
    layout "e2e": one output [N, classes, 6] = x1,y1,x2,y2,score,class (parser yolo-e2e).
    layout "yolov8": one output [N, 4+classes, classes] (cx,cy,w,h + one-hot scores; parser yolov8).
    """
    onnx, TP, h = _onnx()
    nodes, inits = [], []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(onnx.numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(h.make_node(op, ins, [out], **attrs))
        return out

    chan = []
    for c in range(3):
        chan.append(node("Slice", ["x", const(f"s{c}", np.array([c], np.int64)), const(f"e{c}", np.array([c + 1], np.int64)),
                                   const(f"a{c}", np.array([1], np.int64))], f"ch{c}"))
    hi, lo = const("hi", np.array(0.5, np.float32)), const("lo", np.array(0.35, np.float32))
    big = [node("Greater", [chan[c], hi], f"big{c}") for c in range(3)]
    small = [node("Less", [chan[c], lo], f"small{c}") for c in range(3)]
    xs = const("xs", np.arange(width, dtype=np.float32).reshape(1, 1, 1, width))
    ys = const("ys", np.arange(height, dtype=np.float32).reshape(1, 1, height, 1))
    xs1 = const("xs1", (np.arange(width, dtype=np.float32) + 1).reshape(1, 1, 1, width))
    ys1 = const("ys1", (np.arange(height, dtype=np.float32) + 1).reshape(1, 1, height, 1))
    wconst, hconst = const("W", np.array(width, np.float32)), const("H", np.array(height, np.float32))
    rows = []
    for k in range(classes):
        want = [k == c for c in range(3)]  # single primary colour per class
        m = node("And", [big[k] if want[k] else small[k], small[(k + 1) % 3]], f"m{k}a")
        m = node("And", [m, small[(k + 2) % 3]], f"m{k}b")
        mf = node("Cast", [m], f"mf{k}", to=TP.FLOAT)
        col = node("ReduceMax", [mf], f"col{k}", axes=[2], keepdims=1)  # [N,1,1,W]
        row = node("ReduceMax", [mf], f"row{k}", axes=[3], keepdims=1)  # [N,1,H,1]
        x2 = node("ReduceMax", [node("Mul", [col, xs1], f"cx1{k}")], f"x2{k}", axes=[1, 2, 3], keepdims=0)
        y2 = node("ReduceMax", [node("Mul", [row, ys1], f"ry1{k}")], f"y2{k}", axes=[1, 2, 3], keepdims=0)
        # x1 = W - max(col * (W - x))
        wx = node("Sub", [wconst, xs], f"wx{k}")
        hy = node("Sub", [hconst, ys], f"hy{k}")
        x1 = node("Sub", [wconst, node("ReduceMax", [node("Mul", [col, wx], f"cwx{k}")], f"mx1{k}", axes=[1, 2, 3], keepdims=0)], f"x1{k}")
        y1 = node("Sub", [hconst, node("ReduceMax", [node("Mul", [row, hy], f"rhy{k}")], f"my1{k}", axes=[1, 2, 3], keepdims=0)], f"y1{k}")
        score = node("ReduceMax", [mf], f"sc{k}", axes=[1, 2, 3], keepdims=0)
        cls = node("Add", [node("Mul", [score, const(f"z{k}", np.array(0.0, np.float32))], f"zz{k}"),
                           const(f"cidc{k}", np.array(float(k), np.float32))], f"clc{k}")
        cols = [node("Unsqueeze", [v, const(f"ax{k}_{i}", np.array([1], np.int64))], f"u{k}_{i}")
                for i, v in enumerate([x1, y1, x2, y2, score, cls])]
        rows.append((cols, x1, y1, x2, y2, score))
    if layout == "e2e":
        per = [node("Unsqueeze", [node("Concat", cols, f"row{k}c", axis=1), const(f"axr_{k}", np.array([1], np.int64))],
                    f"rowu{k}") for k, (cols, *_rest) in enumerate(rows)]
        node("Concat", per, "detections", axis=1)
        out = h.make_tensor_value_info("detections", TP.FLOAT, ["N", classes, 6])
    elif layout == "yolov8":
        # [N, 4+classes, classes]: column k = box of class k as cx,cy,w,h + one-hot * score
        cols_k = []
        for k, (cols, x1, y1, x2, y2, score) in enumerate(rows):
            cx = node("Div", [node("Add", [x1, x2], f"sx{k}"), const(f"two{k}", np.array(2.0, np.float32))], f"cx{k}")
            cy = node("Div", [node("Add", [y1, y2], f"sy{k}"), const(f"twoy{k}", np.array(2.0, np.float32))], f"cy{k}")
            w = node("Sub", [x2, x1], f"w{k}")
            hh = node("Sub", [y2, y1], f"h{k}")
            onehot = [node("Mul", [score, const(f"oh{k}_{j}", np.array(float(j == k), np.float32))], f"ohv{k}_{j}")
                      for j in range(classes)]
            vals = [node("Unsqueeze", [v, const(f"ay{k}_{i}", np.array([1], np.int64))], f"uy{k}_{i}")
                    for i, v in enumerate([cx, cy, w, hh, *onehot])]
            cols_k.append(node("Unsqueeze", [node("Concat", vals, f"colk{k}", axis=1),
                                             const(f"az{k}", np.array([2], np.int64))], f"colku{k}"))
        node("Concat", cols_k, "output0", axis=2)
        out = h.make_tensor_value_info("output0", TP.FLOAT, ["N", 4 + classes, classes])
    else:
        raise ValueError(layout)
    graph = h.make_graph(nodes, "squares", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3, height, width])],
                         [out], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def mean_color_classifier(path: str, size: int = 16) -> str:
    """Classifier: input float [N,3,size,size] RGB 0..1; output [N,3] = softmax(20 * mean colour)
    - the dominant primary colour wins (red=0, green=1, blue=2)."""
    onnx, TP, h = _onnx()
    nodes = [h.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             h.make_node("Mul", ["m", "k"], ["logits"]),
             h.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    inits = [onnx.numpy_helper.from_array(np.array(20.0, np.float32), "k")]
    graph = h.make_graph(nodes, "colour", [h.make_tensor_value_info("x", TP.FLOAT, ["N", 3, size, size])],
                         [h.make_tensor_value_info("probs", TP.FLOAT, ["N", 3])], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
