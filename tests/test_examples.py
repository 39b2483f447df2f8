"""Every example runs, and does what its DeepStream counterpart does."""
import importlib.util
import os
import re

import numpy as np
import pytest

from conftest import ROOT, decode_all


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_deepstream_test1(default_assets, tmp_path, capsys):
    clip = default_assets["clip"]
    out = tmp_path / "t1.mp4"
    assert load("deepstream_test1").main([clip, "--out", str(out)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Frame Number=")]
    assert len(lines) == 250
    pat = re.compile(r"Frame Number=(\d+) Number of Objects=(\d+) Vehicle_count=(\d+) Person_count=(\d+)")
    parsed = [tuple(map(int, pat.fullmatch(ln).groups())) for ln in lines]
    assert [p[0] for p in parsed] == list(range(250))
    assert all(v + pc <= n for _, n, v, pc in parsed)
    assert sum(p[3] > 0 for p in parsed) > 20 and sum(p[2] > 0 for p in parsed) > 20
    frames = decode_all(str(out))
    src = decode_all(clip)
    assert len(frames) == 250
    # the overlay text sits on a black band at the top-left
    band = frames[10][12:26, 10:200].astype(int)
    assert (band < 60).mean() > 0.5 and np.abs(band - src[10][12:26, 10:200]).mean() > 20


def test_imagedata_multistream(clip, clip2, detector_config, tmp_path):
    mod = load("imagedata_multistream")
    folder = tmp_path / "img"
    assert mod.main([clip[0], clip2[0], "--folder", str(folder), "--every", "10", "--config", detector_config]) == 0
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.jpg"))
    want = []
    for sid, n in ((0, len(clip[1])), (1, len(clip2[1]))):
        for f in range(0, n, 10):
            want.append(f"stream_{sid}/frame_{f:05d}.jpg")
            want += [f"stream_{sid}/frame_{f:05d}_obj{k}_{c}.jpg" for k, c in enumerate(("red", "green", "blue"))]
    assert files == sorted(want)
    import cv2
    crop = cv2.imread(str(folder / "stream_0" / "frame_00010_obj0_red.jpg"))[..., ::-1].reshape(-1, 3).mean(0)
    assert crop[0] > 180 and crop[1] < 70 and crop[2] < 70
    annotated = cv2.imread(str(folder / "stream_1" / "frame_00000.jpg"))
    assert annotated.shape == (240, 320, 3)


def test_ssd_parser_matches_builtin_parser(default_assets):
    from vidpipe.assets import default_infer_config
    from vidpipe.flow import Flow
    mod = load("ssd_parser")
    clip = default_assets["clip"]
    p = mod.build(clip, None)
    mine = []
    p["osd"].sink_pad.add_probe(lambda pad, b: mine.extend(
        sorted((o.class_id, tuple(np.round(o.bbox.as_xyxy(), 2))) for o in f.objects) for f in b.frames))
    p.run()
    cfg = default_infer_config(mod.SCORE_THRESHOLD)
    cfg.cluster_mode, cfg.class_attrs_all.nms_iou_threshold = 2, mod.IOU_THRESHOLD
    ref = []
    Flow().capture(clip).infer(cfg).probe(lambda pad, b: ref.extend(
        sorted((o.class_id, tuple(np.round(o.bbox.as_xyxy(), 2))) for o in f.objects) for f in b.frames)).run()
    assert len(mine) == len(ref) == 250
    assert mine == ref
    assert sum(len(x) for x in mine) > 100


def test_deepstream_test2(default_assets, tmp_path, capsys):
    out = tmp_path / "t2.mp4"
    assert load("deepstream_test2").main([default_assets["clip"], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    frames = re.findall(r"^Frame Number=(\d+) ", text, re.M)
    assert [int(n) for n in frames] == list(range(250))
    past = re.findall(r"^Past frame meta: stream 0 object (\d+) class \d+ seen in frames (\d+)$", text, re.M)
    ended = re.findall(r"^Terminated track: stream 0 object (\d+) class \d+ frames (\d+)-(\d+) age \d+$", text, re.M)
    assert len(past) >= 5 and len(ended) >= 5
    assert {p[0] for p in past} <= {e[0] for e in ended}   # every confirmed track is reported ending
    labelled = re.findall(r"^  object (\d+) (\w+): (.+)$", text, re.M)
    colours = [lab for _, cls, lab in labelled if cls == "car"]
    assert colours and all(len(c.split(", ")) == 2 for c in colours)   # colour + brightness
    assert all(c.split(", ")[1] in ("dark", "medium", "bright") for c in colours)
    assert all(int(i) >= 0 for i, _, _ in labelled)
    assert len(decode_all(str(out))) == 250


def test_deepstream_test3_tiled_file(clip, clip2, detector_config, tmp_path, capsys):
    out = tmp_path / "t3.mp4"
    assert load("deepstream_test3").main(["-i", clip[0], clip2[0], "--out", str(out), "--config", detector_config]) == 0
    text = capsys.readouterr().out
    assert len(re.findall(r"^Frame Number=\d+ Source=0 Number of Objects=3 blue=1 green=1 red=1$", text, re.M)) == 30
    assert len(re.findall(r"^Frame Number=\d+ Source=1 ", text, re.M)) == 20
    assert "per-stream frames: 0:30 1:20" in text
    frames = decode_all(str(out))
    assert frames[0].shape == (720, 1280, 3) and len(frames) >= 20


def test_deepstream_test3_no_display_disable_probe(clip, detector_config, capsys):
    assert load("deepstream_test3").main(["-i", clip[0], "--no-display", "--disable-probe", "--config", detector_config]) == 0
    text = capsys.readouterr().out
    assert "Frame Number" not in text and "per-stream frames: 0:30" in text


def test_rtsp_in_rtsp_out(clip, detector_config):
    import shutil
    import signal
    import subprocess
    import sys
    import time
    import vidpipe
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed")
    cam = vidpipe.parse_launch(f"urisrc uri={clip[0]} file-loop=1 ! streammux ! rtspsink name=o port=0 mount=/cam")
    cam.start()
    try:
        cam_url = cam["o"].url.replace("localhost", "127.0.0.1")
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "examples", "deepstream_rtsp_in_rtsp_out.py"), "-i", cam_url,
                                 cam_url, "-p", str(port), "--config", detector_config], stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 30
            line = ""
            while "Launched" not in line and time.time() < deadline:
                line = proc.stdout.readline()
            r = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name,width,height",
                                "-of", "csv=p=0", f"rtsp://127.0.0.1:{port}/ds-test"], capture_output=True, text=True, timeout=30)
            assert r.stdout.strip() == "h264,1280,720", r.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    finally:
        cam.stop()


def test_usbcam_without_camera_says_so(capsys):
    assert load("deepstream_test1_usbcam").main(["/dev/video7", "--seconds", "1"]) == 1
    assert "/dev/video7: no such camera device" in capsys.readouterr().err


def test_runtime_source_add_delete(clip, detector_config, capsys):
    assert load("runtime_source_add_delete").main([clip[0], "--max-sources", "3", "--interval", "0.6",
                                                   "--config", detector_config]) == 0
    text = capsys.readouterr().out
    assert text.count("stream-added: ") == 3 and text.count("stream-removed: ") == 2
    counts = dict(kv.split(":") for kv in re.search(r"frames per stream: (.*)", text).group(1).split())
    assert set(counts) == {"0", "1", "2"} and all(int(v) > 0 for v in counts.values())


def test_demux_multi_in_multi_out(clip, clip2, detector_config, tmp_path):
    assert load("demux_multi_in_multi_out").main([clip[0], clip2[0], "--folder", str(tmp_path), "--config", detector_config]) == 0
    assert len(decode_all(str(tmp_path / "out_0.mp4"))) == 30 and len(decode_all(str(tmp_path / "out_1.mp4"))) == 20


def test_deepstream_nvdsanalytics(default_assets, tmp_path, capsys):
    mod = load("deepstream_nvdsanalytics")
    clip = default_assets["clip"]
    assert mod.main(["-i", clip, clip, "--frames", "90", "--no-display"]) == 0
    out = capsys.readouterr().out.splitlines()
    frame_pat = re.compile(r"Frame Number=(\d+) stream id=(\d) Number of Objects=(\d+) Vehicle Count=(\d+) "
                           r"Person Count=(\d+)")
    frames = [(i, frame_pat.fullmatch(ln)) for i, ln in enumerate(out) if ln.startswith("Frame Number=")]
    assert len(frames) == 180 and all(m for _, m in frames)
    assert sorted(int(m.group(1)) for _, m in frames if m.group(2) == "0") == list(range(90))
    cum, seen = {"Entry": 0, "Exit": 0}, 0
    for i, m in frames:
        n, sid, objs = int(m.group(1)), int(m.group(2)), int(m.group(3))
        following = out[i + 1:i + 5]
        if sid == 0:
            roi = eval(following[0].removeprefix("Objs in ROI: "))          # noqa: S307 - our own printout
            new_cum = eval(following[1].removeprefix("Linecrossing Cumulative: "))  # noqa: S307
            now = eval(following[2].removeprefix("Linecrossing Current Frame: "))  # noqa: S307
            assert 0 <= roi["Centre"] <= objs
            assert {k: cum[k] + now[k] for k in cum} == new_cum, n     # totals grow by this frame's crossings
            crossed = [ln for ln in out[:i] if ln.startswith("Object ") and " crossed " in ln][seen:]
            assert len(crossed) == sum(now.values())                   # one object line per crossing
            seen += len(crossed)
            cum = new_cum
        else:
            assert following[0].startswith("Overcrowding status: {'Street': ")
    assert sum(cum.values()) >= 1       # the clip has objects crossing the line in its first 90 frames


def test_deepstream_nvdsanalytics_bad_config(default_assets, tmp_path, capsys):
    bad = tmp_path / "a.txt"
    bad.write_text("[line-crossing-stream-0]\nline-crossing-A=1;2;3\n")
    mod = load("deepstream_nvdsanalytics")
    assert mod.main(["-i", default_assets["clip"], "--config", str(bad), "--no-display"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {bad}:2: line-crossing-A: expected 8 numbers, got 3"


def test_deepstream_testsr(default_assets, tmp_path, capsys):
    import av
    mod = load("deepstream_testsr")
    clip = default_assets["clip"]
    folder = tmp_path / "clips"
    assert mod.main(["-i", clip, "--dir", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    started = [ln for ln in out if ln.startswith("Recording started: stream 0 at ")]
    finished = [re.fullmatch(r"Recording done: (\S+) ([\d.]+)-([\d.]+) s \(([\d.]+) s\)", ln)
                for ln in out if ln.startswith("Recording done: ")]
    assert len(started) >= len(finished) >= 1 and all(finished)   # a start during a clip extends it
    t0 = float(started[0].split(" at ")[1].split(" s")[0])
    path, first, last = finished[0].group(1), float(finished[0].group(2)), float(finished[0].group(3))
    assert first <= max(t0 - 2, 0) + 1e-6 and last >= min(t0 + 7, 9.9)   # 2 s before to 7 s after (or the clip's end)
    # the clip holds the source's own packets (no re-encode), from a keyframe
    with av.open(clip) as c:
        src = [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]
    with av.open(path) as c:
        got = [(bytes(p), p.is_keyframe) for p in c.demux(c.streams.video[0]) if p.size]
    assert got[0][1]
    start = src.index(got[0][0])
    assert [b for b, _ in got] == src[start:start + len(got)]
    assert sorted(os.listdir(folder)) == sorted({os.path.basename(m.group(1)) for m in finished})


def test_deepstream_test4(default_assets, tmp_path, capsys, monkeypatch):
    import json
    monkeypatch.chdir(tmp_path)                                 # the outbox file goes to the working folder
    out = tmp_path / "events.jsonl"
    mod = load("deepstream_test4")
    assert mod.main(["-i", default_assets["clip"], "--conn-str", f"file://{out}", "--no-display"]) == 0
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"messages: {len(rows)} acknowledged, 0 queued, 0 dropped"
    assert 1 <= len(rows) <= 9                                  # at most frames 0, 30, ... 240
    for r in rows:
        m = r["payload"]
        assert r["id"] == m["messageid"] and m["sensor"]["id"] == "CAMERA_0"
        kind = "vehicle" if "vehicle" in m["object"] else "person"
        assert m["event"]["type"] == ("moving" if kind == "vehicle" else "entry")
        assert (m["object"]["vehicle"]["license"] == "XX1234") if kind == "vehicle" else (m["object"]["person"]["age"] == 45)
    assert mod.main(["--conn-str", "nowhere;x", "--no-display"]) == 1
    assert "conn-str 'nowhere;x': expected 'host;port'" in capsys.readouterr().err
    assert os.path.exists(tmp_path / "vidpipe-outbox-nvmsg-broker.db")
