"""Bad input: one readable message, a non-zero exit, nothing half-written."""
import signal
import subprocess
import sys
import time

import pytest

import vidpipe
from vidpipe import make_element
from vidpipe.errors import MediaError, ModelError, PropertyError, UnsupportedCodecError
from vidpipe.media.reader import VideoReader

from conftest import W, H, decode_all


def cli(*args, timeout=120, cwd=None):
    return subprocess.run([sys.executable, "-m", "vidpipe", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def one_error_line(r):
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_missing_file(tmp_path, detector):
    with pytest.raises(MediaError, match="no such file"):
        VideoReader(str(tmp_path / "nope.mp4"))
    r = cli("run", str(tmp_path / "nope.mp4"), "--model", detector, "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2
    assert "nope.mp4: no such file" in one_error_line(r)
    assert not (tmp_path / "o.mp4").exists()


def test_nvdec_process_without_cuda_is_one_clear_error(tmp_path, clip):
    r = cli("run", clip[0], "--nvdec-process", "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2
    assert "--nvdec-process" in one_error_line(r) and "--device cuda" in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_mp4(tmp_path, clip, detector):
    data = open(clip[0], "rb").read()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])  # moov atom (at the end) is gone
    with pytest.raises(MediaError, match="cannot open as video"):
        VideoReader(str(bad))
    r = cli("run", str(bad), "--model", detector, "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2 and "truncated.mp4: cannot open as video" in one_error_line(r)
    assert not (tmp_path / "o.mp4").exists()


def test_file_that_is_not_video(tmp_path, detector):
    txt = tmp_path / "notes.mp4"
    txt.write_text("this is not a video\n" * 100)
    with pytest.raises(MediaError, match="cannot open as video"):
        VideoReader(str(txt))
    wav = tmp_path / "sound.wav"  # a real media file with no video stream
    import av
    import numpy as np
    with av.open(str(wav), "w") as o:
        s = o.add_stream("pcm_s16le", rate=8000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        fr.sample_rate = 8000
        for p in s.encode(fr):
            o.mux(p)
    with pytest.raises(MediaError, match="contains no video stream"):
        VideoReader(str(wav))


def test_unsupported_codec(tmp_path):
    import av
    import numpy as np
    path = tmp_path / "mj.avi"
    with av.open(str(path), "w") as o:
        s = o.add_stream("mjpeg", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24").reformat(format="yuvj420p")
            f.pts = i
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    data = path.read_bytes()
    assert data.count(b"MJPG") >= 1
    bad = tmp_path / "zz.avi"
    bad.write_bytes(data.replace(b"MJPG", b"ZZZZ"))  # a fourcc no decoder knows
    with pytest.raises(UnsupportedCodecError, match="not supported by this FFmpeg build; re-encode"):
        VideoReader(str(bad))


def test_bad_config_key_and_value_via_cli(tmp_path, clip, detector):
    cfg = tmp_path / "pgie.txt"
    cfg.write_text(f"[property]\nonnx-file={detector}\nbatch-sise=1\nnet-scale-factor=abc\n")
    r = cli("run", clip[0], "--config", str(cfg), "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2
    assert f"{cfg}:3: unknown key 'batch-sise' ignored (did you mean 'batch-size'?)" in r.stderr
    assert f"{cfg}:4: net-scale-factor: invalid value 'abc'" in one_error_line(r)
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.jsonl").exists()


def test_model_parser_mismatch_fails_at_start(clip, detector):
    p = vidpipe.parse_launch(f"urisrc uri={clip[0]} ! infer model={detector} parser=ssd-tflite ! fakesink")
    with pytest.raises(ModelError) as e:
        p.start()
    msg = str(e.value)
    assert "do not fit parser 'ssd-tflite'" in msg and "detections [?,3,6] float32" in msg
    assert not p.is_running()


def test_unknown_element_and_property():
    with pytest.raises(PropertyError, match="no element named 'streamux'; did you mean streammux"):
        make_element("streamux")
    with pytest.raises(PropertyError, match="has no property 'batchsize'"):
        make_element("streammux", batchsize=2)
    with pytest.raises(PropertyError, match="property 'batch-size' got 0; minimum is 1"):
        make_element("streammux", batch_size=0)
    with pytest.raises(PropertyError, match="allowed: h264, h265"):
        make_element("encoder", codec="vp9")


def test_output_folder_missing(tmp_path, clip, detector):
    r = cli("run", clip[0], "--model", detector, "--out", str(tmp_path / "no" / "dir" / "o.txt"))
    assert r.returncode == 2 and "unknown output extension '.txt'" in one_error_line(r)


def test_sigint_mid_run_leaves_a_playable_mp4(tmp_path, detector):
    from vidpipe.synthetic import make_clip
    src = str(tmp_path / "loop.mp4")
    make_clip(src, frames=50, width=W, height=H)
    out = tmp_path / "int.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "vidpipe", "run", src, "--model", detector, "--file-loop",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl = tmp_path / "int.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not jsonl.exists() or jsonl.stat().st_size < 20000):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "outputs finalised" in stderr
    frames = decode_all(str(out))
    assert len(frames) > 50  # more than one loop, all decodable
    lines = jsonl.read_text().splitlines()
    assert len(lines) >= len(frames)


def test_bad_analytics_config_via_cli(tmp_path, clip, detector):
    cfg = tmp_path / "an.txt"
    cfg.write_text("[property]\nconfig-width=320\n[line-crossing-stream-0]\nline-crossing-A=1;2;3;4\nmode=fast\n")
    r = cli("run", clip[0], "--model", detector, "--analytics", str(cfg), "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2
    assert one_error_line(r) == f"error: {cfg}:4: line-crossing-A: expected 8 numbers, got 4"
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.jsonl").exists()


def test_analytics_counts_in_the_cli_jsonl(tmp_path, clip, detector_config):
    import json
    cfg = tmp_path / "an.txt"
    cfg.write_text("[property]\nconfig-width=320\nconfig-height=240\n[roi-filtering-stream-0]\n"
                   "roi-All=0;0;320;0;320;240;0;240\n")
    r = cli("run", clip[0], "--config", detector_config, "--analytics", str(cfg), "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    # every square is inside the whole-frame ROI on every frame (the tracker confirms them first)
    assert [row["analytics"]["obj_in_roi_cnt"]["All"] for row in rows] == [len(row["objects"]) for row in rows]
    assert all(len(row["objects"]) == 3 for row in rows)
