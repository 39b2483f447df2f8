"""Small models that vidpipe builds in code, so the secondary-classifier samples work with no
download. They are what they say: hand-set colour rules written as ONNX graphs, not trained
networks. Any ONNX classifier of your own plugs in the same way (network-type=1, process-mode=2).

    from vidpipe.models import build_color_classifier
    path, labels = build_color_classifier("color.onnx")
"""
from __future__ import annotations

import os

import numpy as np

# name -> reference RGB; a crop's class is the nearest reference to its mean centre colour
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 25), "white": (235, 235, 235), "gray": (128, 128, 128), "red": (200, 30, 30),
    "green": (40, 170, 40), "blue": (35, 60, 200), "yellow": (230, 210, 40), "orange": (235, 130, 25),
    "brown": (115, 70, 35), "cyan": (30, 200, 210), "magenta": (210, 40, 200),
}
BRIGHTNESS = ("dark", "medium", "bright")
INPUT_SIZE = 32


def _save(graph, path: str) -> str:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx.save(model, path)
    return path


def _center_mean(h, nodes: list, inits: list, size: int) -> str:
    """Mean RGB of the central half of the crop (less background at the edges): [N,3]."""
    from onnx import numpy_helper
    a, b = size // 4, size - size // 4
    inits += [numpy_helper.from_array(np.array([a, a], np.int64), "c_start"),
              numpy_helper.from_array(np.array([b, b], np.int64), "c_end"),
              numpy_helper.from_array(np.array([2, 3], np.int64), "c_axes")]
    nodes += [h.make_node("Slice", ["x", "c_start", "c_end", "c_axes"], ["center"]),
              h.make_node("ReduceMean", ["center"], ["mean"], axes=[2, 3], keepdims=0)]
    return "mean"


def build_color_classifier(path: str) -> tuple[str, str]:
    """Colour classifier: input float [N,3,32,32] RGB 0..1, output probabilities [N, len(COLORS)]
    = softmax(-40 * squared distance of the mean centre colour to each reference). Writes the
    model and a label file next to it; returns (model path, label path)."""
    from onnx import TensorProto, helper, numpy_helper

    refs = np.array(list(COLORS.values()), np.float32) / 255.0  # [K,3]
    nodes: list = []
    inits = [numpy_helper.from_array(refs.T[None], "refs"),      # [1,3,K]
             numpy_helper.from_array(np.array(-40.0, np.float32), "k")]
    mean = _center_mean(helper, nodes, inits, INPUT_SIZE)
    nodes += [helper.make_node("Unsqueeze", [mean, "ax2"], ["m3"]),  # [N,3,1]
              helper.make_node("Sub", ["m3", "refs"], ["diff"]),     # [N,3,K]
              helper.make_node("Mul", ["diff", "diff"], ["sq"]),
              helper.make_node("ReduceSum", ["sq", "ax1"], ["dist"], keepdims=0),  # [N,K]
              helper.make_node("Mul", ["dist", "k"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    inits += [numpy_helper.from_array(np.array([2], np.int64), "ax2"), numpy_helper.from_array(np.array([1], np.int64), "ax1")]
    graph = helper.make_graph(nodes, "vidpipe_color", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(COLORS)])], initializer=inits)
    _save(graph, path)
    labels = os.path.splitext(path)[0] + "_labels.txt"
    with open(labels, "w") as fh:
        fh.write(";".join(COLORS) + "\n")
    return path, labels


def build_brightness_classifier(path: str) -> tuple[str, str]:
    """Brightness classifier: dark / medium / bright from the mean luma of the crop's centre
    (soft thresholds at 0.3 and 0.65). Input float [N,3,32,32] RGB 0..1."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits = [numpy_helper.from_array(np.array([[0.299], [0.587], [0.114]], np.float32), "luma_w"),
             numpy_helper.from_array(np.array([[-30.0, 0.0, 30.0]], np.float32), "slope"),
             numpy_helper.from_array(np.array([[9.0, 0.0, -19.5]], np.float32), "bias")]
    mean = _center_mean(helper, nodes, inits, INPUT_SIZE)
    # logits: dark = 9 - 30 y, medium = 0, bright = 30 y - 19.5  (crossings at y = 0.3 and 0.65)
    nodes += [helper.make_node("MatMul", [mean, "luma_w"], ["y"]),          # [N,1]
              helper.make_node("Mul", ["y", "slope"], ["ys"]),
              helper.make_node("Add", ["ys", "bias"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    graph = helper.make_graph(nodes, "vidpipe_brightness", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])], initializer=inits)
    _save(graph, path)
    labels = os.path.splitext(path)[0] + "_labels.txt"
    with open(labels, "w") as fh:
        fh.write(";".join(BRIGHTNESS) + "\n")
    return path, labels


def classifier_config(model: str, labels: str, *, unique_id: int, operate_on_gie_id: int = 1,
                      operate_on_class_ids: list[int] | None = None, threshold: float = 0.5,
                      async_mode: bool = False, reinfer_interval: int = 0):
    """An InferConfig for one of these classifiers as a secondary (process-mode=2) stage."""
    from .infer.config import InferConfig
    return InferConfig(model_file=model, labelfile_path=labels, net_scale_factor=1 / 255.0, network_type=1,
                       process_mode=2, gie_unique_id=unique_id, operate_on_gie_id=operate_on_gie_id,
                       operate_on_class_ids=list(operate_on_class_ids or []), classifier_threshold=threshold,
                       classifier_async_mode=async_mode, secondary_reinfer_interval=reinfer_interval,
                       input_object_min_width=8, input_object_min_height=8, source="(vidpipe.models)")
