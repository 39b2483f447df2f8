"""Secondary inference on object crops, and the tracker in a running pipeline."""
import json
import subprocess
import sys

import pytest

from vidpipe import BBox, ObjectMeta, make_element
from vidpipe.models import build_color_classifier, classifier_config
from vidpipe.synthetic import COLORS as SQUARE_COLORS, Square, make_clip

from conftest import H, W, muxed


@pytest.fixture(scope="module")
def color_model(tmp_path_factory):
    return build_color_classifier(str(tmp_path_factory.mktemp("m") / "color.onnx"))


@pytest.fixture(scope="module")
def six_colours(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("c") / "six.mp4")
    sq = [Square(k, 30, (10 + 45 * k, 20 + 35 * k), (2.0 + k * 0.5, 0.0)) for k in range(6)]
    return path, make_clip(path, frames=20, width=W, height=H, squares=sq)


def truth_probe(truth):
    def probe(pad, batch):
        for f in batch.frames:
            for cid, (x1, y1, x2, y2) in truth[f.frame_num].items():
                f.objects.append(ObjectMeta(cid, BBox.from_xyxy(x1, y1, x2, y2), 1.0, SQUARE_COLORS[cid][0],
                                            component_id=1))
    return probe


def pipeline(uris, *stages, batch_size=None):
    return muxed(uris, *stages, make_element("fakesink", "sink"), batch_size=batch_size)


def test_color_classifier_on_synthetic_objects(six_colours, color_model):
    path, truth = six_colours
    sgie = make_element("infer", "sgie", config=classifier_config(*color_model, unique_id=2))
    p = pipeline([path], sgie)
    p["mux"].src_pad.add_probe(truth_probe(truth))
    results = []
    sgie.src_pad.add_probe(lambda pad, b: results.extend(
        (o.label, o.classifications[0].top.label if o.classifications else None) for f in b.frames for o in f.objects))
    p.run()
    assert len(results) == 6 * len(truth)
    right = sum(a == b for a, b in results)
    assert right / len(results) >= 0.99, [r for r in results if r[0] != r[1]][:5]


def test_secondary_filters_and_batching(clip, clip2, detector_config, color_model):
    sgie = make_element("infer", "sgie", config=classifier_config(*color_model, unique_id=2, operate_on_class_ids=[0, 2]))
    pgie = make_element("infer", "pgie", config_file_path=detector_config)
    p = pipeline([clip[0], clip2[0]], pgie, sgie, batch_size=2)
    runs = []
    got = []

    def hooked(start):
        def run(x):
            runs.append(len(x))
            return start(x)
        return run
    orig_start = sgie.start

    def start():
        orig_start()
        sgie.model_backend.run = hooked(sgie.model_backend.run)
    sgie.start = start
    sgie.src_pad.add_probe(lambda pad, b: got.extend(
        (o.class_id, [c.component_id for c in o.classifications], o.classifications[0].top.label if o.classifications else None)
        for f in b.frames for o in f.objects))
    batches = []
    pgie.src_pad.add_probe(lambda pad, b: batches.append(len(b.frames)))
    p.run()
    # one model call per batch, crops of all objects of both streams together
    assert len(runs) == len(batches) and sum(runs) == 2 * sum(batches)
    for cid, comps, top in got:
        if cid == 1:
            assert comps == []                      # green is not in operate-on-class-ids
        else:
            assert comps == [2] and top == ["red", "green", "blue"][cid]


def test_min_object_size(clip, detector_config, color_model):
    cfg = classifier_config(*color_model, unique_id=2)
    cfg.input_object_min_width = 200
    p = pipeline([clip[0]], make_element("infer", "pgie", config_file_path=detector_config), make_element("infer", "sgie", config=cfg))
    got = []
    p["sgie"].src_pad.add_probe(lambda pad, b: got.extend(o.classifications for f in b.frames for o in f.objects))
    p.run()
    assert len(got) == 3 * len(clip[1]) and all(c == [] for c in got)


def test_async_mode_infers_each_track_once_per_interval(clip, detector_config, color_model):
    n = 5
    sgie = make_element("infer", "sgie", config=classifier_config(*color_model, unique_id=2, async_mode=True, reinfer_interval=n))
    p = pipeline([clip[0]], make_element("infer", "pgie", config_file_path=detector_config),
                 make_element("tracker", "trk", algorithm="iou"), sgie)
    per_frame = []
    sgie.src_pad.add_probe(lambda pad, b: per_frame.extend(
        [(o.object_id, o.classifications[0].top.label) for o in f.objects] for f in b.frames))
    p.run()
    frames = len(clip[1])
    assert all(len(x) == 3 for x in per_frame)          # every object labelled on every frame
    assert sgie.calls <= 3 * -(-frames // n) and sgie.calls >= 3
    assert {lab for x in per_frame for _, lab in x} == {"red", "green", "blue"}


def test_tracker_in_pipeline_keeps_ids(clip, detector_config):
    p = pipeline([clip[0]], make_element("infer", "pgie", config_file_path=detector_config),
                 make_element("nvtracker", "trk", algorithm="bytetrack"))
    ids = []
    p["trk"].src_pad.add_probe(lambda pad, b: ids.extend({o.class_id: o.object_id for o in f.objects} for f in b.frames))
    p.run()
    stable = ids[1]
    assert sorted(stable) == [0, 1, 2] and len(set(stable.values())) == 3 and min(stable.values()) >= 0
    assert all(x == stable for x in ids[1:])


def test_cli_tracker_writes_object_ids(clip, detector_config, tmp_path):
    out = tmp_path / "t.mp4"
    r = subprocess.run([sys.executable, "-m", "vidpipe", "-q", "run", clip[0], "--config", detector_config, "--tracker", "sort",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    ids = [{o["class_id"]: o["object_id"] for o in row["objects"] if o["object_id"] >= 0} for row in rows]
    assert ids[0] == {} and ids[1] == {}               # SORT confirms a track on its third hit
    assert len(set(ids[2].values())) == 3 and all(x == ids[2] for x in ids[2:])


def test_osd_caption_shows_id_and_classifier():
    from vidpipe import Classification, Label
    from vidpipe.elements.osd import object_caption
    o = ObjectMeta(2, BBox(0, 0, 10, 10), 0.87, "car", object_id=12)
    o.classifications.append(Classification(2, [Label(3, "red", 0.9)]))
    assert object_caption(o, True) == "car 12 0.87 red"


def test_cached_classifications_end_with_their_tracks(color_model):
    from vidpipe import Batch, Classification
    from vidpipe.track import TrackInfo
    sgie = make_element("infer", "sgie", config=classifier_config(*color_model, unique_id=2, async_mode=True))
    sgie.start()
    sgie._cache = {(0, 5): (1, Classification(2)), (0, 6): (1, Classification(2)), (1, 5): (1, Classification(2))}
    sgie.process(Batch([], user_meta={"terminated_tracks": [TrackInfo(0, 5, 2, 10, 0, 9, (0, 0, 1, 1))]}))
    assert set(sgie._cache) == {(0, 6), (1, 5)}
