"""Containers and codecs in and out: MP4/MKV/MOV/AVI, raw H.264/H.265 elementary streams."""
import json
import shutil
import subprocess

import pytest

import vidpipe
from vidpipe.flow import Flow
from vidpipe.synthetic import make_clip

from conftest import H, IN_CI, W, decode_all, iou


def detections(uri, config, **src_props):
    got = []
    Flow().capture(uri, **src_props).infer(config).probe(
        lambda pad, b: got.extend((f.frame_num, f.pts_seconds, {o.class_id: o.bbox.as_xyxy() for o in f.objects})
                                  for f in b.frames)).run()
    return got


def assert_matches(got, truth, min_iou=0.9):
    assert [g[0] for g in got] == list(range(len(truth)))
    for n, _, objs in got:
        for cid, box in truth[n].items():
            assert iou(objs[cid], box) >= min_iou, (n, cid)


@pytest.mark.parametrize("ext,codec", [(".mkv", "h264"), (".mov", "h264"), (".h264", "h264"), (".h265", "h265"),
                                       (".mp4", "h265"), (".ts", "h264")])
def test_inputs_of_each_container(tmp_path, detector_config, ext, codec):
    path = str(tmp_path / f"clip{ext}")
    truth = make_clip(path, frames=12, width=W, height=H, codec=codec)
    assert_matches(detections(path, detector_config), truth)


def test_avi_mpeg4_input(tmp_path, detector_config):
    import av
    from vidpipe.synthetic import background, default_squares, render
    path = str(tmp_path / "clip.avi")
    sq, bg = default_squares(W, H), background(W, H)
    truth = []
    with av.open(path, "w") as o:
        s = o.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.bit_rate, s.codec_context.gop_size = 8_000_000, 1
        for t in range(10):
            truth.append({q.class_id: q.box(t, W, H) for q in sq})
            f = av.VideoFrame.from_ndarray(render(t, W, H, sq, bg), format="rgb24")
            f.pts = t
            for p in s.encode(f.reformat(format="yuv420p")):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    assert_matches(detections(path, detector_config), truth)


def test_file_loop_keeps_timestamps_growing(clip, detector_config):
    path, truth = clip
    got = detections(path, detector_config, file_loop=True, num_buffers=len(truth) * 2 + 5)
    assert len(got) == len(truth) * 2 + 5
    pts = [g[1] for g in got]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert abs(pts[len(truth)] - len(truth) / 25.0) < 1e-6


@pytest.mark.parametrize("ext,codec,fmt", [(".mp4", "h264", "mov,mp4,m4a,3gp,3g2,mj2"), (".mkv", "h265", "matroska,webm"),
                                           (".h264", "h264", "h264"), (".h265", "h265", "hevc")])
def test_outputs_play_in_ffprobe(clip, detector_config, tmp_path, ext, codec, fmt):
    path, truth = clip
    out = str(tmp_path / f"out{ext}")
    Flow().capture(path).infer(detector_config).osd().encode(out, codec=codec, bitrate=800_000).run()
    frames = decode_all(out)
    assert len(frames) == len(truth) and frames[0].shape == (H, W, 3)
    if shutil.which("ffprobe") is None:
        if IN_CI:
            pytest.fail("ffprobe missing: scripts/setup.sh --test installs it")
        pytest.skip("ffprobe not installed")
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", out],
                       capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    st = info["streams"][0]
    assert st["codec_name"] == {"h264": "h264", "h265": "hevc"}[codec]
    assert (st["width"], st["height"]) == (W, H)
    assert int(st["nb_read_frames"]) == len(truth)
    assert info["format"]["format_name"] == fmt


def test_multistream_output_needs_percent_d(clip, clip2, detector_config, tmp_path):
    with pytest.raises(vidpipe.PipelineError, match="use %d in location"):
        Flow().capture(clip[0], clip2[0]).infer(detector_config).encode(str(tmp_path / "one.mp4")).run()
    out = str(tmp_path / "s_%d.mp4")
    Flow().capture(clip[0], clip2[0]).infer(detector_config).osd().encode(out).run()
    assert len(decode_all(out % 0)) == len(clip[1]) and len(decode_all(out % 1)) == len(clip2[1])


def test_jsonl_lines(clip, detector_config, tmp_path):
    path, truth = clip
    jl = tmp_path / "m.jsonl"
    Flow().capture(path).infer(detector_config).jsonl(str(jl)).run()
    rows = [json.loads(x) for x in jl.read_text().splitlines()]
    assert [r["frame_num"] for r in rows] == list(range(len(truth)))
    r = rows[3]
    assert r["source_id"] == 0 and r["pts"] == pytest.approx(3 / 25)
    labels = sorted(o["label"] for o in r["objects"])
    assert labels == ["blue", "green", "red"]
    red = next(o for o in r["objects"] if o["label"] == "red")
    l, t, w, h = red["bbox"]
    assert iou((l, t, l + w, t + h), truth[3][0]) >= 0.9 and red["object_id"] == -1 and red["class_id"] == 0
