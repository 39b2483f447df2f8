"""Analytics (nvdsanalytics): exact counts on scripted tracks.

Tracks are written as (frame, object id, class, anchor x, anchor y) and turned into boxes 60 px
wide and 100 px tall whose bottom centre is the anchor; each frame is a batch through the engine,
as the element runs it. The config is DeepStream's format, written in each test."""
from __future__ import annotations

import numpy as np
import pytest

from vidpipe import make_element
from vidpipe.analytics import AnalyticsEngine, load_analytics_config
from vidpipe.core.meta import Batch, Frame
from vidpipe.errors import ConfigError

W, H = 1920, 1080
FPS = 30.0

LINE = """[property]
enable=1
config-width=1920
config-height=1080
osd-mode=2
display-font-size=12

[line-crossing-stream-0]
enable=1
# direction from (900,400) to (900,600): counted "in" when moving down across y=500
line-crossing-Entry=900;400;900;600;400;500;1400;500
class-id={classes}
extended={extended}
mode={mode}
count-every-crossing={every}
"""


def config(tmp_path, text, name="analytics.txt"):
    p = tmp_path / name
    p.write_text(text)
    return load_analytics_config(str(p))


def line_cfg(tmp_path, mode="balanced", extended=0, classes="-1", every=0):
    return config(tmp_path, LINE.format(mode=mode, extended=extended, classes=classes, every=every))


def frame_with(objects, n, source=0, size=(W, H)):
    """objects: [(object id, class, x, y)] with (x, y) the bottom centre."""
    f = Frame(np.zeros((size[1], size[0], 3), np.uint8), source, n, n / FPS)  # calloc: no pages touched
    if objects:
        ids, cls, xs, ys = (np.asarray(v) for v in zip(*objects))
        k = size[0] / W  # boxes scale with the frame
        xyxy = np.stack([xs - 30 * k, ys - 100 * k, xs + 30 * k, ys], 1).astype(np.float32)
        f.objects.add(xyxy=xyxy, class_id=cls, object_id=ids, confidence=0.9)
    return f


def run(cfg, tracks, frames, streams=(0,), size=(W, H)):
    """tracks: {frame: [(id, class, x, y)]}, the same on every stream; one batch per frame index
    holding every stream's frame. Returns [per stream: [per frame: AnalyticsFrameMeta]] and the
    per-object info by (stream, frame, id)."""
    eng = AnalyticsEngine(cfg)
    metas = {s: [] for s in streams}
    info = {}
    for n in range(frames):
        fs = [frame_with(tracks.get(n, []), n, s, size) for s in streams]
        b = Batch(fs)
        for f, m in zip(fs, eng.process(b)):
            metas[f.source_id].append(m)
            for o in f.objects:
                info[(f.source_id, n, o.object_id)] = m.obj_info(o)
    return metas, info


def path(obj_id, points, cls=0, start=0):
    """{frame: [(id, cls, x, y)]} for consecutive frames from `start`."""
    return {start + i: [(obj_id, cls, x, y)] for i, (x, y) in enumerate(points)}


def merge(*tracks):
    out: dict = {}
    for t in tracks:
        for k, v in t.items():
            out.setdefault(k, []).extend(v)
    return out


def counts(metas, name="Entry"):
    """(cumulative in, cumulative out) after the last frame, and the frames where each counted."""
    last = metas[-1]
    ins = [i for i, m in enumerate(metas) if m.obj_lc_curr_cnt.get(name)]
    outs = [i for i, m in enumerate(metas) if m.lc_curr_against.get(name)]
    return last.obj_lc_cum_cnt[name], last.lc_cum_against[name], ins, outs


DOWN = [(900, 400 + 20 * i) for i in range(11)]          # y 400 .. 600, crosses y=500 between frames 5 and 6


@pytest.mark.parametrize("mode", ["loose", "balanced", "strict"])
def test_crossing_counted_once_at_the_frame_it_happens(tmp_path, mode):
    metas, info = run(line_cfg(tmp_path, mode), path(7, DOWN), 11)
    m = metas[0]
    at = 7 if mode == "strict" else 6    # strict's margin is 20 px (20% of the box): y=520 is on the line still
    assert counts(m) == (1, 0, [at], [])
    assert info[(0, at, 7)].lcStatus == ["Entry"] and info[(0, at - 1, 7)].lcStatus == []
    assert m[at].objLCCurrCnt == {"Entry": 1} and m[10].objLCCumCnt == {"Entry": 1}
    assert m[10].lc_cum_by_class == {"Entry": {0: 1}}


def test_cross_and_come_back(tmp_path):
    back = DOWN + DOWN[::-1] + DOWN + DOWN[::-1]
    metas, _ = run(line_cfg(tmp_path), path(1, back), len(back))
    assert counts(metas[0]) == (1, 1, [6], [17])          # once per direction by default
    metas, _ = run(line_cfg(tmp_path, every=1), path(1, back), len(back))
    assert counts(metas[0]) == (2, 2, [6, 28], [17, 39])


def test_line_end_grazed_counts_only_when_extended(tmp_path):
    beyond = [(1450, y) for _, y in DOWN]                     # passes 50 px right of the segment's end
    assert counts(run(line_cfg(tmp_path, extended=0), path(1, beyond), 11)[0][0])[:2] == (0, 0)
    assert counts(run(line_cfg(tmp_path, extended=1), path(1, beyond), 11)[0][0])[:2] == (1, 0)
    inside = [(1395, y) for _, y in DOWN]                     # just inside the end
    assert counts(run(line_cfg(tmp_path, extended=0), path(1, inside), 11)[0][0])[:2] == (1, 0)


def test_jitter_across_the_line_is_not_a_crossing(tmp_path):
    jitter = [(900, 495 + 10 * (i % 2)) for i in range(30)]  # +-5 px around the line, box 100 px tall
    for mode in ("balanced", "strict"):
        assert counts(run(line_cfg(tmp_path, mode), path(1, jitter), 30)[0][0])[:2] == (0, 0)
    # loose has no margin: the first swing each way counts, once per direction
    assert counts(run(line_cfg(tmp_path, "loose"), path(1, jitter), 30)[0][0]) == (1, 1, [1], [2])


def test_fast_object_jumping_over_the_line(tmp_path):
    metas, _ = run(line_cfg(tmp_path), path(3, [(900, 300), (900, 320), (900, 340), (900, 700), (900, 720)]), 5)
    assert counts(metas[0]) == (1, 0, [3], [])


def test_missed_frames_and_occlusion_gap(tmp_path):
    t = merge(path(4, [(900, 420), (900, 440), (900, 460)]), path(4, [(900, 560), (900, 580)], start=12))
    metas, _ = run(line_cfg(tmp_path), t, 14)
    assert counts(metas[0]) == (1, 0, [12], [])


def test_two_objects_crossing_together(tmp_path):
    t = merge(path(1, DOWN), path(2, [(1000, y) for _, y in DOWN]))
    metas, info = run(line_cfg(tmp_path), t, 11)
    assert metas[0][6].obj_lc_curr_cnt == {"Entry": 2}
    assert counts(metas[0]) == (2, 0, [6], [])


def test_other_classes_and_untracked_objects_not_counted(tmp_path):
    t = merge(path(1, DOWN, cls=2), path(-1, [(1000, y) for _, y in DOWN]), path(5, [(1100, y) for _, y in DOWN]))
    metas, _ = run(line_cfg(tmp_path, classes="0;1"), t, 11)
    assert counts(metas[0]) == (1, 0, [6], [])               # only id 5: class 0 and tracked
    assert metas[0][10].lc_cum_by_class == {"Entry": {0: 1}}
    assert metas[0][10].obj_cnt == {0: 2, 2: 1}


def test_track_age_per_mode(tmp_path):
    short = [(900, 480), (900, 530)]                          # two observations, then gone
    assert counts(run(line_cfg(tmp_path, "loose"), path(1, short), 2)[0][0])[:2] == (1, 0)
    assert counts(run(line_cfg(tmp_path, "balanced"), path(1, short), 2)[0][0])[:2] == (0, 0)
    three = [(900, 470), (900, 480), (900, 530)]
    assert counts(run(line_cfg(tmp_path, "balanced"), path(1, three), 3)[0][0])[:2] == (1, 0)
    assert counts(run(line_cfg(tmp_path, "strict"), path(1, three), 3)[0][0])[:2] == (0, 0)


def test_strict_wants_the_path_along_the_direction(tmp_path):
    slanted = [(600 + 60 * i, 470 + 10 * i) for i in range(8)]   # crosses at a shallow angle (~10 degrees)
    assert counts(run(line_cfg(tmp_path, "balanced"), path(1, slanted), 8)[0][0])[:2] == (1, 0)
    assert counts(run(line_cfg(tmp_path, "strict"), path(1, slanted), 8)[0][0])[:2] == (0, 0)


def test_forgotten_object_counts_again(tmp_path):
    text = LINE.format(mode="balanced", extended=0, classes="-1", every=0).replace(
        "display-font-size=12", "display-font-size=12\nforget-after-ms=1000")
    cfg = config(tmp_path, text)
    up = DOWN[::-1]
    # down, up, a 0.1 s gap, down and up again (the same object: nothing new), a 1.8 s gap, down
    again = merge(path(1, DOWN), path(1, up, start=11), path(1, DOWN, start=25), path(1, up, start=36),
                  path(1, DOWN, start=100))
    metas, _ = run(cfg, again, 111)
    assert counts(metas[0]) == (2, 1, [6, 106], [17])


ROIS = """[property]
config-width=1920
config-height=1080

[roi-filtering-stream-0]
enable=1
roi-Left=0;0;960;0;960;1080;0;1080
roi-Door=1200;300;1600;300;1600;700;1200;700
class-id={classes}
inverse-roi={inverse}

[overcrowding-stream-0]
enable=1
roi-Hall=1000;200;1800;200;1800;900;1000;900
object-threshold=3
time-threshold={time}
"""


def test_roi_occupancy_per_frame(tmp_path):
    cfg = config(tmp_path, ROIS.format(classes="-1", inverse=0, time=0))
    # object 1 walks right along y=500 from x=800; object 2 stands in the door; object 3 (class 4) on the left
    t = merge(path(1, [(800 + 100 * i, 500) for i in range(10)]), path(2, [(1400, 500)] * 10),
              path(3, [(100, 900)] * 10, cls=4))
    metas, info = run(cfg, t, 10)
    got = [(m.obj_in_roi_cnt["Left"], m.obj_in_roi_cnt["Door"]) for m in metas[0]]
    # x = 800 900 in Left | 1000 1100 | 1200..1600 in Door (its edges included) | 1700
    assert got == [(2, 1), (2, 1), (1, 1), (1, 1), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 1)]
    assert info[(0, 0, 1)].roiStatus == ["Left"] and info[(0, 5, 1)].roiStatus == ["Door"]
    assert info[(0, 2, 1)].roiStatus == []
    cfg = config(tmp_path, ROIS.format(classes="0", inverse=0, time=0))
    assert [m.obj_in_roi_cnt["Left"] for m in run(cfg, t, 10)[0][0]][:2] == [1, 1]   # class 4 not counted
    cfg = config(tmp_path, ROIS.format(classes="-1", inverse=1, time=0))
    got = [m.obj_in_roi_cnt["Left"] for m in run(cfg, t, 10)[0][0]]
    assert got == [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]              # inverse: outside the polygon counts


def test_overcrowding_honours_time_threshold(tmp_path):
    crowd = merge(*[path(k, [(1100 + 100 * k, 600)] * 30, start=10) for k in range(3)],
                  path(9, [(1300, 650)] * 10, start=0))       # one object early; three from frame 10
    metas, info = run(config(tmp_path, ROIS.format(classes="-1", inverse=0, time=0)), crowd, 40)
    status = [m.ocStatus["Hall"] for m in metas[0]]
    assert status == [False] * 10 + [True] * 30
    metas, info = run(config(tmp_path, ROIS.format(classes="-1", inverse=0, time=500)), crowd, 40)
    status = [m.ocStatus["Hall"] for m in metas[0]]
    assert status == [False] * 25 + [True] * 15               # 0.5 s = 15 frames after it began at 10
    assert info[(0, 25, 0)].ocStatus == ["Hall"] and info[(0, 24, 0)].ocStatus == []
    assert metas[0][5].oc_count == {"Hall": 1} and metas[0][12].oc_count == {"Hall": 3}


DIRS = """[property]
config-width=1920
config-height=1080
[direction-detection-stream-0]
enable=1
direction-East=0;0;100;0
direction-South=0;0;0;100
mode={mode}
"""


def test_direction(tmp_path):
    t = merge(path(1, [(100 + 8 * i, 500) for i in range(12)]), path(2, [(800, 100 + 8 * i) for i in range(12)]),
              path(3, [(1500, 500)] * 12), path(4, [(300 + 4 * i, 800 - 7 * i) for i in range(12)]))
    metas, info = run(config(tmp_path, DIRS.format(mode="balanced")), t, 12)
    # 3 stands still; 4 goes up and right, 60 degrees from East: too far off for balanced (45)
    assert [info[(0, 11, k)].dirStatus for k in (1, 2, 3, 4)] == ["East", "South", "", ""]
    metas, info = run(config(tmp_path, DIRS.format(mode="loose")), t, 12)
    assert info[(0, 11, 4)].dirStatus == "East"              # loose: the closest within 90 degrees
    assert info[(0, 0, 1)].dirStatus == ""                     # one position: no movement yet


def test_same_results_at_any_batch_size_and_frame_size(tmp_path):
    t = merge(path(1, DOWN), path(2, [(1000, 600 - 20 * i) for i in range(11)]))
    text = LINE.format(mode="balanced", extended=0, classes="-1", every=0)
    group = text[text.index("[line-crossing-stream-0]"):]
    four = config(tmp_path, text + "".join("\n" + group.replace("stream-0", f"stream-{s}") for s in (1, 2, 3)))
    one, info1 = run(line_cfg(tmp_path), t, 11)
    many, info4 = run(four, t, 11, streams=(0, 1, 2, 3))
    assert one[0][10].obj_lc_cum_cnt == {"Entry": 1} and one[0][10].lc_cum_against == {"Entry": 1}
    for s in range(4):
        assert [(m.obj_lc_cum_cnt, m.lc_cum_against) for m in many[s]] == [(m.obj_lc_cum_cnt, m.lc_cum_against)
                                                                         for m in one[0]]
    half = {k: [(i, c, x / 2, y / 2) for i, c, x, y in v] for k, v in t.items()}
    small, _ = run(line_cfg(tmp_path), half, 11, size=(W // 2, H // 2))
    assert [m.obj_lc_cum_cnt for m in small[0]] == [m.obj_lc_cum_cnt for m in one[0]]


def test_config_errors_name_file_line_and_key(tmp_path):
    bad = LINE.format(mode="sideways", extended=0, classes="-1", every=0)
    with pytest.raises(ConfigError, match=r"analytics.txt:14: mode: mode must be one of loose, balanced, strict"):
        config(tmp_path, bad)
    bad = LINE.format(mode="loose", extended=0, classes="-1", every=0).replace("400;500;1400;500", "400;500")
    with pytest.raises(ConfigError, match=r":11: line-crossing-Entry: expected 8 numbers, got 6"):
        config(tmp_path, bad)
    with pytest.raises(ConfigError, match=r":3: unknown group \[roi-stream-0\]"):
        config(tmp_path, "[property]\nenable=1\n[roi-stream-0]\nroi-A=1;2;3;4;5;6\n")
    with pytest.raises(ConfigError, match=r":2: roi-A: expected at least 3 x;y points"):
        config(tmp_path, "[roi-filtering-stream-0]\nroi-A=1;2;3;4\n")
    with pytest.raises(ConfigError, match=r":2: colour: unknown key in \[overcrowding-stream-1\]"):
        config(tmp_path, "[overcrowding-stream-1]\ncolour=3\n")
    with pytest.raises(ConfigError, match="not found"):
        load_analytics_config(str(tmp_path / "missing.txt"))


def test_yaml_config_same_as_ini(tmp_path):
    ini = line_cfg(tmp_path)
    y = tmp_path / "a.yml"
    y.write_text("property:\n  config-width: 1920\n  config-height: 1080\nline-crossing-stream-0:\n"
                 "  line-crossing-Entry: [[900, 400], [900, 600], [400, 500], [1400, 500]]\n  mode: balanced\n"
                 "  extended: 0\n")
    cfg = load_analytics_config(str(y))
    assert cfg.streams[0].lines == ini.streams[0].lines
    y.write_text("property:\n  config-width: 1920\nline-crossing-stream-0:\n  mode: fast\n")
    with pytest.raises(ConfigError, match=r"a.yml:4: mode: mode must be one of"):
        load_analytics_config(str(y))


def test_disabled_group_and_element_osd(tmp_path):
    cfg = config(tmp_path, LINE.format(mode="balanced", extended=0, classes="-1", every=0).replace(
        "[line-crossing-stream-0]\nenable=1", "[line-crossing-stream-0]\nenable=0"))
    assert cfg.streams[0].lines is None
    el = make_element("nvdsanalytics", config=line_cfg(tmp_path))
    el.start()
    f = frame_with([(1, 0, 900, 450)], 0)
    el.process(Batch([f]))
    d = f.meta.display_meta
    assert [(ln.x1, ln.y1, ln.x2, ln.y2) for ln in d.lines] == [(400.0, 500.0, 1400.0, 500.0)]
    assert [(a.x1, a.y1, a.x2, a.y2) for a in d.arrows] == [(900.0, 500.0, 900.0, 540.0)]
    assert [t.text for t in d.texts] == ["Entry: 0 in, 0 out"]
    for mode, texts in ((1, ["Entry"]), (0, [])):   # 1: shapes and names, 0: nothing
        el = make_element("nvdsanalytics", config=line_cfg(tmp_path), osd_mode=mode)
        el.start()
        f = frame_with([(1, 0, 900, 450)], 0)
        el.process(Batch([f]))
        assert [t.text for t in f.meta.display_meta.texts] == texts
        assert len(f.meta.display_meta.lines) == (1 if mode else 0)
    el = make_element("nvdsanalytics", config=line_cfg(tmp_path), enable=False)
    el.start()
    f = frame_with([(1, 0, 900, 450)], 0)
    el.process(Batch([f]))
    assert "analytics" not in f.meta.user_meta and not f.meta.display_meta


def _sv_line_counts(tracks, frames):
    import supervision as sv
    z = sv.LineZone(sv.Point(400, 500), sv.Point(1400, 500), triggering_anchors=[sv.Position.BOTTOM_CENTER])
    for n in range(frames):
        objs = tracks.get(n, [])
        if objs:
            ids, cls, xs, ys = (np.asarray(v) for v in zip(*objs))
            d = sv.Detections(xyxy=np.stack([xs - 30, ys - 100, xs + 30, ys], 1).astype(np.float32),
                              class_id=cls, tracker_id=ids)
        else:
            d = sv.Detections.empty()
        z.trigger(d)
    return z.in_count + z.out_count


# scenario -> (tracks, frames, supervision's crossings, ours loose / balanced / strict as (in, out));
# docs/analytics.md explains each disagreement
SCENARIOS = {
    "clean crossing": (path(1, DOWN), 11, 1, [(1, 0), (1, 0), (1, 0)]),
    "down, up, down, up": (path(1, DOWN + DOWN[::-1] + DOWN + DOWN[::-1]), 44, 4, [(1, 1), (1, 1), (1, 1)]),
    "jitter +-5 px": (path(1, [(900, 495 + 10 * (i % 2)) for i in range(30)]), 30, 29, [(1, 1), (0, 0), (0, 0)]),
    "past the line's end": (path(1, [(1450, y) for _, y in DOWN]), 11, 0, [(0, 0), (0, 0), (0, 0)]),
    "jump over the line": (path(3, [(900, 300), (900, 320), (900, 340), (900, 700), (900, 720)]), 5, 1,
                           [(1, 0), (1, 0), (1, 0)]),       # strict: counted at the 5th observation
    "8 missed frames": (merge(path(4, [(900, 420), (900, 440), (900, 460)]), path(4, [(900, 560), (900, 580)], start=12)),
                        14, 1, [(1, 0), (1, 0), (1, 0)]),
    "two observations": (path(1, [(900, 480), (900, 530)]), 2, 1, [(1, 0), (0, 0), (0, 0)]),
    "untracked (id -1)": (path(-1, DOWN), 11, 1, [(0, 0), (0, 0), (0, 0)]),
    "shallow angle": (path(1, [(600 + 60 * i, 470 + 10 * i) for i in range(8)]), 8, 1, [(1, 0), (1, 0), (0, 0)]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_line_counts_beside_supervision_line_zone(tmp_path, name):
    pytest.importorskip("supervision")
    tracks, frames, theirs, ours = SCENARIOS[name]
    assert _sv_line_counts(tracks, frames) == theirs
    assert [counts(run(line_cfg(tmp_path, m), tracks, frames)[0][0])[:2] for m in ("loose", "balanced", "strict")] == ours


def test_roi_counts_beside_supervision_polygon_zone(tmp_path):
    """Equal, edges included on both sides (supervision fills the polygon into a pixel mask)."""
    sv = pytest.importorskip("supervision")
    t = merge(path(1, [(800 + 100 * i, 500) for i in range(10)]), path(2, [(1400, 500)] * 10),
              path(5, [(1200, 300 + 50 * i) for i in range(10)]))
    metas, _ = run(config(tmp_path, ROIS.format(classes="-1", inverse=0, time=0)), t, 10)
    zone = sv.PolygonZone(np.array([[1200, 300], [1600, 300], [1600, 700], [1200, 700]]),
                          triggering_anchors=[sv.Position.BOTTOM_CENTER])
    theirs = []
    for n in range(10):
        ids, cls, xs, ys = (np.asarray(v) for v in zip(*t[n]))
        d = sv.Detections(xyxy=np.stack([xs - 30, ys - 100, xs + 30, ys], 1).astype(np.float32), class_id=cls,
                          tracker_id=ids)
        theirs.append(int(zone.trigger(d).sum()))
    ours = [m.obj_in_roi_cnt["Door"] for m in metas[0]]
    assert theirs == ours == [2, 2, 2, 2, 3, 3, 3, 3, 3, 1]   # frame 8: (1600, 500) and (1200, 700) on edges


def test_pipeline_counts_squares_crossing_a_line(tmp_path, clip, detector_config):
    """Decode -> detect (the colour-square model) -> track -> analytics on a synthetic clip: the
    counts, and the frames they happen on, follow from the squares' known trajectories."""
    from conftest import H as CH
    from conftest import W as CW
    from conftest import muxed
    path_, truth = clip

    def clear_of_margins(x):  # no anchor within 1.5 px of the margin's edge (decoded boxes move by 1 px)
        return all(abs(abs((b[0] + b[2]) / 2 - x) - max(2.0, 0.1 * (b[3] - b[1]))) > 1.5
                   for boxes in truth for b in boxes.values())
    mid = next(x for x in range(CW // 2, CW // 2 + 40) if clear_of_margins(x))
    cfg = tmp_path / "a.txt"
    cfg.write_text(f"[property]\nconfig-width={CW}\nconfig-height={CH}\n"
                   f"[line-crossing-stream-0]\nline-crossing-Mid={mid - 20};{CH // 2};{mid + 20};{CH // 2};"
                   f"{mid};0;{mid};{CH}\nmode=balanced\nextended=1\n")
    got, first_id = [], {}
    sink = make_element("fakesink", "sink")

    def grab(pad, b):
        for f in b.frames:
            m = f.meta.user_meta["analytics"]
            got.append((f.frame_num, m.obj_lc_curr_cnt["Mid"], m.lc_curr_against["Mid"]))
            for o in f.objects:
                if o.object_id >= 0:
                    first_id.setdefault(o.class_id, f.frame_num)
    sink.sink_pad.add_probe(grab)
    muxed([path_], make_element("infer", "pgie", config_file_path=detector_config),
          make_element("tracker", "trk"), make_element("nvdsanalytics", "an", config_file=str(cfg)), sink).run()
    # expected from the truth, from the frame each square got its track id: counted when the
    # anchor (bottom centre) is clearly (> 10% of the box) on the other side and the track has 3
    # observations
    assert sorted(first_id) == [0, 1, 2]
    exp_in, exp_out = [], []
    for cid in range(3):
        side, done = 0, set()
        for t, boxes in enumerate(truth[first_id[cid]:], first_id[cid]):
            x1, y1, x2, y2 = boxes[cid]
            d = (x1 + x2) / 2 - mid
            margin = max(2.0, 0.1 * (y2 - y1))
            s = 1 if d > margin else (-1 if d < -margin else 0)
            if s and side and s != side and t - first_id[cid] + 1 < 3:
                continue  # a young track's crossing waits
            if s and side and s != side and s not in done:
                (exp_in if s > 0 else exp_out).append(t)
                done.add(s)
            side = s or side
    assert exp_in or exp_out, "the clip's squares should cross the middle"
    assert [n for n, i, _ in got for _ in range(i)] == sorted(exp_in)
    assert [n for n, _, o in got for _ in range(o)] == sorted(exp_out)


def test_two_frames_of_one_stream_in_one_batch(tmp_path):
    """The muxer may batch a stream's consecutive frames together: each frame's totals are its own."""
    t = merge(path(1, DOWN), path(2, [(1000, 600 - 20 * i) for i in range(11)]))
    one, _ = run(line_cfg(tmp_path), t, 11)
    eng = AnalyticsEngine(line_cfg(tmp_path))
    got = []
    for ks in ([0], *([n, n + 1] for n in range(1, 11, 2))):  # frames 5 and 6 together: 6 crosses
        got += eng.process(Batch([frame_with(t.get(k, []), k) for k in ks]))
    assert [(m.obj_lc_curr_cnt, m.obj_lc_cum_cnt, m.lc_cum_against) for m in got] == \
        [(m.obj_lc_curr_cnt, m.obj_lc_cum_cnt, m.lc_cum_against) for m in one[0]]
