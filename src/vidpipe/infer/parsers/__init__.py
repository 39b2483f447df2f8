"""Output parsers: turn a model's raw output tensors into detections or class labels.

Each parser checks the model's outputs when the pipeline starts and fails with a message that
lists them when they do not fit. Built-in names: ssd-tflite, yolov5, yolov8 (also v11),
yolo-e2e, yolox, nanodet, detectnet_v2, classifier, none; or a Python function.
"""
from __future__ import annotations

from .base import Detections, Parser, ParseContext, get_parser, parser_names, register_parser
from . import ssd, yolo, nanodet, detectnet, classifier, custom  # noqa: F401,E402  (registration)

__all__ = ["Detections", "Parser", "ParseContext", "get_parser", "parser_names", "register_parser"]
