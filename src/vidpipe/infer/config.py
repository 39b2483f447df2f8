"""Inference configuration: DeepStream nvinfer INI files and vidpipe YAML, one schema.

Every key of nvinfer's [property] and [class-attrs-*] groups that matters on this runtime is
read; keys that only steer TensorRT engine building are accepted and ignored; unknown keys warn
with file:line; bad values raise ConfigError with file:line:key.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

from ..config.ini import read_ini
from ..config.yamlfile import load_yaml
from ..errors import ConfigError

log = logging.getLogger("vidpipe")


@dataclass
class ClassAttrs:
    pre_cluster_threshold: float = 0.25
    post_cluster_threshold: float = 0.0
    nms_iou_threshold: float = 0.45
    topk: int = -1
    eps: float = 0.2
    min_boxes: int = 3
    dbscan_min_score: float = 0.0
    detected_min_w: int = 0
    detected_min_h: int = 0
    detected_max_w: int = 0
    detected_max_h: int = 0
    roi_top_offset: int = 0
    roi_bottom_offset: int = 0


@dataclass
class InferConfig:
    model_file: str = ""
    labelfile_path: str = ""
    net_scale_factor: float = 1.0
    offsets: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    model_color_format: int = 0          # 0 RGB, 1 BGR, 2 GRAY
    batch_size: int = 1
    network_mode: int = 0                # 0 fp32, 1 int8, 2 fp16 (a hint; CPU backends ignore it)
    num_detected_classes: int = 0
    interval: int = 0
    gie_unique_id: int = 1
    process_mode: int = 1                # 1 primary (full frame), 2 secondary (object crops)
    network_type: int = 0                # 0 detector, 1 classifier, 2 segmentation, 100 other
    cluster_mode: int = -1               # -1 auto (NMS unless the model did it), 0 group-rectangles(~NMS), 1 DBSCAN, 2 NMS, 3 DBSCAN+NMS, 4 none
    maintain_aspect_ratio: bool = False
    symmetric_padding: bool = False
    output_tensor_meta: bool = False
    filter_out_class_ids: list[int] = field(default_factory=list)
    operate_on_gie_id: int = -1
    operate_on_class_ids: list[int] = field(default_factory=list)
    input_object_min_width: int = 0
    input_object_min_height: int = 0
    input_object_max_width: int = 0
    input_object_max_height: int = 0
    classifier_threshold: float = 0.5
    classifier_async_mode: bool = False
    secondary_reinfer_interval: int = 0
    infer_dims: list[int] = field(default_factory=list)  # c;h;w for models with dynamic input size
    parser: str = "auto"                 # vidpipe: parser name, or module:function / file.py:function
    backend: str = "auto"                # vidpipe: auto | onnxruntime | litert | torch
    num_threads: int = 0                 # vidpipe: CPU threads for the backend (0: all cores)
    device: str = "cpu"                  # vidpipe: cpu | cuda:N
    class_attrs_all: ClassAttrs = field(default_factory=ClassAttrs)
    class_attrs: dict[int, ClassAttrs] = field(default_factory=dict)
    source: str = ""                     # the file it came from

    def attrs_for(self, class_id: int) -> ClassAttrs:
        return self.class_attrs.get(class_id, self.class_attrs_all)


def _ints(v: str) -> list[int]:
    return [int(x) for x in str(v).replace(",", ";").split(";") if x.strip()]


def _floats(v: str) -> list[float]:
    return [float(x) for x in str(v).replace(",", ";").split(";") if x.strip()]


def _bool(v: Any) -> bool:
    s = str(v).strip().lower()
    if s in ("1", "true", "yes"):
        return True
    if s in ("0", "false", "no"):
        return False
    raise ValueError(f"expected 0 or 1, got {v!r}")


def _choice(*allowed: int) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        i = int(v)
        if i not in allowed:
            raise ValueError(f"got {i}; allowed: {', '.join(map(str, allowed))}")
        return i
    return conv


def _positive(v: Any) -> int:
    i = int(v)
    if i < 1:
        raise ValueError(f"must be >= 1, got {i}")
    return i


def _nonneg(v: Any) -> int:
    i = int(v)
    if i < 0:
        raise ValueError(f"must be >= 0, got {i}")
    return i


def _unit(v: Any) -> float:
    f = float(v)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {f}")
    return f


def _offsets(v: Any) -> list[float]:
    vals = _floats(v) if not isinstance(v, list) else [float(x) for x in v]
    if len(vals) not in (1, 3):
        raise ValueError(f"expected 1 or 3 values separated by ';', got {len(vals)}")
    return vals * 3 if len(vals) == 1 else vals


_PATH = "path"
# [property] key -> (field, converter)
PROPERTY_KEYS: dict[str, tuple[str, Any]] = {
    "onnx-file": ("model_file", _PATH), "model-file": ("model_file", _PATH),
    "tflite-file": ("model_file", _PATH), "model": ("model_file", _PATH),
    "labelfile-path": ("labelfile_path", _PATH), "labels": ("labelfile_path", _PATH),
    "net-scale-factor": ("net_scale_factor", float), "offsets": ("offsets", _offsets),
    "model-color-format": ("model_color_format", _choice(0, 1, 2)),
    "batch-size": ("batch_size", _positive), "network-mode": ("network_mode", _choice(0, 1, 2, 3)),
    "num-detected-classes": ("num_detected_classes", _nonneg), "interval": ("interval", _nonneg),
    "gie-unique-id": ("gie_unique_id", _positive), "process-mode": ("process_mode", _choice(1, 2)),
    "network-type": ("network_type", _choice(0, 1, 2, 3, 100)),
    "cluster-mode": ("cluster_mode", _choice(0, 1, 2, 3, 4)),
    "maintain-aspect-ratio": ("maintain_aspect_ratio", _bool),
    "symmetric-padding": ("symmetric_padding", _bool),
    "output-tensor-meta": ("output_tensor_meta", _bool),
    "filter-out-class-ids": ("filter_out_class_ids", _ints),
    "operate-on-gie-id": ("operate_on_gie_id", int), "operate-on-class-ids": ("operate_on_class_ids", _ints),
    "input-object-min-width": ("input_object_min_width", _nonneg),
    "input-object-min-height": ("input_object_min_height", _nonneg),
    "input-object-max-width": ("input_object_max_width", _nonneg),
    "input-object-max-height": ("input_object_max_height", _nonneg),
    "classifier-threshold": ("classifier_threshold", _unit),
    "classifier-async-mode": ("classifier_async_mode", _bool),
    "secondary-reinfer-interval": ("secondary_reinfer_interval", _nonneg),
    "parser": ("parser", str), "parse-bbox-func-name": ("parser", str),
    "parse-classifier-func-name": ("parser", str),
    "infer-dims": ("infer_dims", _ints), "backend": ("backend", str), "num-threads": ("num_threads", _nonneg), "device": ("device", str),
}
# keys that steer TensorRT engine building or GPU placement in DeepStream: accepted, ignored
IGNORED_KEYS = {
    "gpu-id", "model-engine-file", "int8-calib-file", "workspace-size", "force-implicit-batch-dim",
    "output-blob-names", "uff-input-blob-name", "uff-input-order", "input-dims",
    "scaling-filter", "scaling-compute-hw", "crop-objects-to-roi-boundary", "custom-lib-path",
    "engine-create-func-name", "tlt-model-key", "tlt-encoded-model", "enable-dla", "use-dla-core",
    "maintain-aspect-ratio-scale", "proto-file", "model-file-format", "uff-file", "mean-file",
    "disable-output-host-copy", "layer-device-precision", "output-io-formats", "network-input-order",
    "cluster-mode-hint", "segmentation-threshold", "segmentation-output-order", "is-classifier",
    "classifier-type", "enable-dbscan",
}
CLASS_KEYS: dict[str, tuple[str, Any]] = {
    "pre-cluster-threshold": ("pre_cluster_threshold", _unit), "threshold": ("pre_cluster_threshold", _unit),
    "post-cluster-threshold": ("post_cluster_threshold", _unit),
    "nms-iou-threshold": ("nms_iou_threshold", _unit), "topk": ("topk", int), "eps": ("eps", _unit),
    "minboxes": ("min_boxes", _nonneg), "dbscan-min-score": ("dbscan_min_score", float),
    "detected-min-w": ("detected_min_w", _nonneg), "detected-min-h": ("detected_min_h", _nonneg),
    "detected-max-w": ("detected_max_w", _nonneg), "detected-max-h": ("detected_max_h", _nonneg),
    "roi-top-offset": ("roi_top_offset", _nonneg), "roi-bottom-offset": ("roi_bottom_offset", _nonneg),
    "group-threshold": ("min_boxes", _nonneg),
}


def _apply(target: Any, table: dict, key: str, value: Any, *, file: str, line: int | None,
           base_dir: str) -> None:
    norm = key.replace("_", "-").lower()
    if norm in IGNORED_KEYS:
        log.debug("%s:%s: %s is ignored on this runtime", file, line, norm)
        return
    if norm not in table:
        import difflib
        close = difflib.get_close_matches(norm, [*table, *IGNORED_KEYS], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        log.warning("%s:%s: unknown key '%s' ignored%s", file, line, key, hint)
        return
    attr, conv = table[norm]
    try:
        if conv is _PATH:
            v = str(value)
            conv_v: Any = v if os.path.isabs(v) or not v else os.path.normpath(os.path.join(base_dir, v))
        else:
            conv_v = conv(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid value {value!r}: {e}", file=file, line=line, key=key) from None
    setattr(target, attr, conv_v)


def _class_section(name: str, file: str, line: int | None) -> int | None:
    """'class-attrs-all' -> None; 'class-attrs-3' -> 3."""
    tail = name[len("class-attrs-"):]
    if tail == "all":
        return None
    if tail.isdigit():
        return int(tail)
    raise ConfigError(f"bad section [{name}]; use [class-attrs-all] or [class-attrs-N]", file=file, line=line)


def _finish(cfg: InferConfig, per_class: dict[int, list]) -> InferConfig:
    for cid, items in per_class.items():
        ca = replace(cfg.class_attrs_all)
        for fn in items:
            fn(ca)
        cfg.class_attrs[cid] = ca
    return cfg


def load_nvinfer_ini(path: str) -> InferConfig:
    cfg = InferConfig(source=path)
    base = os.path.dirname(os.path.abspath(path))
    per_class: dict[int, list] = {}
    seen_property = False
    for e in read_ini(path):
        if e.section == "property":
            seen_property = True
            _apply(cfg, PROPERTY_KEYS, e.key, e.value, file=path, line=e.line, base_dir=base)
        elif e.section.startswith("class-attrs-"):
            cid = _class_section(e.section, path, e.section_line)
            if cid is None:
                _apply(cfg.class_attrs_all, CLASS_KEYS, e.key, e.value, file=path, line=e.line, base_dir=base)
            else:
                # applied after [class-attrs-all], whatever the order in the file
                per_class.setdefault(cid, []).append(
                    lambda ca, e=e: _apply(ca, CLASS_KEYS, e.key, e.value, file=path, line=e.line, base_dir=base))
        else:
            log.warning("%s:%d: unknown section [%s] ignored", path, e.section_line, e.section)
    if not seen_property:
        raise ConfigError("no [property] section; is this an nvinfer config file?", file=path)
    return _finish(cfg, per_class)


def load_infer_yaml(path: str, data: Any = None) -> InferConfig:
    data = load_yaml(path) if data is None else data
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of keys", file=path)
    cfg = InferConfig(source=path)
    base = os.path.dirname(os.path.abspath(path))
    lines = getattr(data, "lines", {})
    per_class: dict[int, list] = {}
    for key, value in data.items():
        k = str(key).replace("_", "-").lower()
        if k in ("class-attrs", "class-attrs-all"):
            groups = value if k == "class-attrs" else {"all": value}
            if not isinstance(groups, dict):
                raise ConfigError("expected a mapping", file=path, line=lines.get(key), key=str(key))
            glines = getattr(groups, "lines", {})
            for cname, attrs in groups.items():
                cid = None if str(cname) == "all" else _class_section(f"class-attrs-{cname}", path, glines.get(cname))
                alines = getattr(attrs, "lines", {})
                if cid is None:
                    for ak, av in (attrs or {}).items():
                        _apply(cfg.class_attrs_all, CLASS_KEYS, str(ak), av, file=path, line=alines.get(ak), base_dir=base)
                else:
                    per_class.setdefault(cid, []).extend(
                        (lambda ca, ak=ak, av=av: _apply(ca, CLASS_KEYS, str(ak), av, file=path,
                                                         line=alines.get(ak), base_dir=base))
                        for ak, av in (attrs or {}).items())
            continue
        if k in CLASS_KEYS:  # shorthand: class attributes at top level apply to all classes
            _apply(cfg.class_attrs_all, CLASS_KEYS, str(key), value, file=path, line=lines.get(key), base_dir=base)
            continue
        if isinstance(value, list) and k in ("offsets", "filter-out-class-ids", "operate-on-class-ids"):
            value = ";".join(map(str, value))
        _apply(cfg, PROPERTY_KEYS, str(key), value, file=path, line=lines.get(key), base_dir=base)
    return _finish(cfg, per_class)


def load_infer_config(path: str) -> InferConfig:
    """Reads an nvinfer INI (.txt/.ini/.cfg) or vidpipe YAML (.yml/.yaml) inference config."""
    if path.lower().endswith((".yml", ".yaml")):
        return load_infer_yaml(path)
    return load_nvinfer_ini(path)


def config_fields() -> list[str]:
    return [f.name for f in fields(InferConfig)]
