import logging

import pytest

from vidpipe.errors import ConfigError
from vidpipe.infer.config import load_infer_config


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_nvinfer_ini_keys_are_read(tmp_path):
    path = write(tmp_path, "pgie.txt", """[property]
gpu-id=0
net-scale-factor=0.0039215697906911373
offsets=1;2;3
model-color-format=1
onnx-file=models/det.onnx
labelfile-path=labels.txt
batch-size=4
network-mode=2
num-detected-classes=4
interval=2
gie-unique-id=7
process-mode=1
network-type=0
cluster-mode=1
maintain-aspect-ratio=1
symmetric-padding=1
output-tensor-meta=1
filter-out-class-ids=1;3

[class-attrs-all]
pre-cluster-threshold=0.3
nms-iou-threshold=0.6
topk=20
eps=0.3
minBoxes=2

[class-attrs-2]
pre-cluster-threshold=0.9
""")
    c = load_infer_config(path)
    assert c.model_file == str(tmp_path / "models" / "det.onnx")
    assert c.labelfile_path == str(tmp_path / "labels.txt")
    assert c.net_scale_factor == 0.0039215697906911373 and c.offsets == [1.0, 2.0, 3.0]
    assert (c.model_color_format, c.batch_size, c.network_mode, c.num_detected_classes) == (1, 4, 2, 4)
    assert (c.interval, c.gie_unique_id, c.cluster_mode) == (2, 7, 1)
    assert c.maintain_aspect_ratio and c.symmetric_padding and c.output_tensor_meta
    assert c.filter_out_class_ids == [1, 3]
    a = c.class_attrs_all
    assert (a.pre_cluster_threshold, a.nms_iou_threshold, a.topk, a.eps, a.min_boxes) == (0.3, 0.6, 20, 0.3, 2)
    # a class section inherits [class-attrs-all] and overrides its own keys
    c2 = c.attrs_for(2)
    assert c2.pre_cluster_threshold == 0.9 and c2.nms_iou_threshold == 0.6 and c2.topk == 20
    assert c.attrs_for(5) is a


def test_unknown_key_warns_with_file_and_line(tmp_path, caplog):
    path = write(tmp_path, "pgie.txt", "[property]\nbatch-size=1\nnet-scale-facter=1\n")
    with caplog.at_level(logging.WARNING, logger="vidpipe"):
        load_infer_config(path)
    assert f"{path}:3: unknown key 'net-scale-facter' ignored (did you mean 'net-scale-factor'?)" in caplog.text


@pytest.mark.parametrize("line,value,key", [
    ("batch-size=zero", "zero", "batch-size"),
    ("network-type=5", "5", "network-type"),
    ("offsets=1;2", "1;2", "offsets"),
    ("maintain-aspect-ratio=maybe", "maybe", "maintain-aspect-ratio"),
])
def test_invalid_value_is_error_with_file_line_key(tmp_path, line, value, key):
    path = write(tmp_path, "pgie.txt", f"[property]\ngpu-id=0\n{line}\n")
    with pytest.raises(ConfigError) as e:
        load_infer_config(path)
    assert str(e.value).startswith(f"{path}:3: {key}: invalid value '{value}'")
    assert (e.value.file, e.value.line, e.value.key) == (path, 3, key)


def test_bad_class_value_and_section(tmp_path):
    path = write(tmp_path, "a.txt", "[property]\nbatch-size=1\n[class-attrs-all]\npre-cluster-threshold=1.5\n")
    with pytest.raises(ConfigError, match=r"a.txt:4: pre-cluster-threshold: invalid value '1.5'.*between 0 and 1"):
        load_infer_config(path)
    path = write(tmp_path, "b.txt", "[property]\nbatch-size=1\n[class-attrs-x]\ntopk=1\n")
    with pytest.raises(ConfigError, match=r"b.txt:3: bad section \[class-attrs-x\]"):
        load_infer_config(path)


def test_not_an_nvinfer_file(tmp_path):
    path = write(tmp_path, "x.txt", "hello\n")
    with pytest.raises(ConfigError, match=r"x.txt:1: expected 'key=value'"):
        load_infer_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_infer_config(str(tmp_path / "missing.txt"))


def test_yaml_config_same_schema(tmp_path):
    path = write(tmp_path, "pgie.yml", """model: det.onnx
net_scale_factor: 0.5
offsets: [1, 2, 3]
interval: 1
parser: yolov8
class-attrs:
  all: {pre-cluster-threshold: 0.4}
  3: {pre-cluster-threshold: 0.8}
""")
    c = load_infer_config(path)
    assert c.model_file == str(tmp_path / "det.onnx") and c.net_scale_factor == 0.5
    assert c.offsets == [1.0, 2.0, 3.0] and c.interval == 1 and c.parser == "yolov8"
    assert c.class_attrs_all.pre_cluster_threshold == 0.4 and c.attrs_for(3).pre_cluster_threshold == 0.8


def test_yaml_bad_value_has_line(tmp_path):
    path = write(tmp_path, "pgie.yml", "model: a.onnx\n\nbatch-size: -3\n")
    with pytest.raises(ConfigError, match=r"pgie.yml:3: batch-size: invalid value -3"):
        load_infer_config(path)
