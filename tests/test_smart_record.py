"""Smart record: clips cut from the source's own packets, from the right keyframe to t + d, with
the source's bytes (no re-encode), always finalised.

The test clip has its frame number stamped into the pixels, a keyframe every 10 frames and no
B-frames, at 10 fps, so a clip's first and last frames are known exactly."""
from __future__ import annotations

import os

import pytest

from vidpipe import Pipeline, make_element
from vidpipe.errors import PropertyError
from vidpipe.synthetic import background, read_number, stamp_number, write_video

FPS = 10


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sr") / "numbered.mp4")
    bg = background(320, 240)
    write_video(path, (stamp_number(bg.copy(), n) for n in range(200)), width=320, height=240, fps=FPS,
                keyint=10, tune="zerolatency")
    return path


def packets(path):
    import av
    with av.open(path) as c:
        return [(bytes(p), bool(p.is_keyframe)) for p in c.demux(c.streams.video[0]) if p.size]


def frame_numbers(path):
    from vidpipe.media.reader import VideoReader
    with VideoReader(path) as r:
        return [read_number(f.image) for f in r]


def run_with_trigger(path, tmp_path, triggers, **props):
    """Plays the clip through urisrc(smart-record) -> fakesink; at frame k of `triggers` calls
    fn(pipeline). Returns the recording-done messages."""
    p = Pipeline()
    src = make_element("urisrc", "src", uri=path, smart_record=1, smart_rec_cache=5,
                       smart_rec_dir_path=str(tmp_path), **props)
    sink = make_element("fakesink", "sink")
    p.add(src, sink)
    p.link(src, sink)

    def probe(pad, batch):
        for f in batch.frames:
            if f.frame_num in triggers:
                triggers[f.frame_num](p)
    src.src_pad.add_probe(probe)
    done = []
    p.smart_record.on_done.append(done.append)
    p.run()
    return done


def test_numbered_clip_is_what_it_says(numbered):
    assert frame_numbers(numbered) == list(range(200))
    assert [k for k, (_, key) in enumerate(packets(numbered)) if key] == list(range(0, 200, 10))


def test_clip_from_the_keyframe_before_to_t_plus_d_with_the_source_bytes(numbered, tmp_path):
    done = run_with_trigger(numbered, tmp_path, {
        57: lambda p: p.smart_record.start(0, start_before=2, duration=3)})
    assert len(done) == 1 and not done[0].error
    clip = done[0].path
    assert clip.endswith(".mp4") and os.path.basename(clip).startswith("Smart_Record_0_0001_")
    # t = 5.7 s: from the keyframe at or before 3.7 s (frame 30) to 8.7 s (frame 87)
    assert frame_numbers(clip) == list(range(30, 88))
    assert [b for b, _ in packets(clip)] == [b for b, _ in packets(numbered)][30:88]   # not re-encoded
    assert done[0].first_pts == pytest.approx(3.0) and done[0].last_pts == pytest.approx(8.7)
    assert done[0].duration == pytest.approx(5.7)


def test_start_while_recording_extends_the_clip(numbered, tmp_path):
    paths = []
    done = run_with_trigger(numbered, tmp_path, {
        40: lambda p: paths.append(p.smart_record.start(0, start_before=0, duration=2)),
        55: lambda p: paths.append(p.smart_record.start(0, start_before=0, duration=2))})
    assert len(done) == 1 and paths[0] == paths[1] == done[0].path
    assert frame_numbers(done[0].path) == list(range(40, 76))


def test_stop_and_sequential_clips(numbered, tmp_path):
    done = run_with_trigger(numbered, tmp_path, {
        20: lambda p: p.smart_record.start(0, start_before=1, duration=50),
        45: lambda p: p.smart_record.stop(0),
        100: lambda p: p.smart_record.start(0, start_before=0.5, duration=1)})
    assert [frame_numbers(d.path) for d in done] == [list(range(10, 46)), list(range(90, 111))]
    assert len({d.path for d in done}) == 2


def test_end_of_stream_finalises_the_clip(numbered, tmp_path):
    done = run_with_trigger(numbered, tmp_path, {190: lambda p: p.smart_record.start(0, start_before=1, duration=60)})
    assert frame_numbers(done[0].path) == list(range(180, 200))


def test_mkv_and_interval_recordings(numbered, tmp_path):
    done = run_with_trigger(numbered, tmp_path, {}, smart_rec_container=1, smart_rec_interval=8,
                            smart_rec_start_time=0, smart_rec_duration=2)
    # a recording every 8 s of the stream: at 0 s and 8 s (the clip is 20 s), 2 s each
    assert [d.path.endswith(".mkv") for d in done] == [True, True, True]
    assert [frame_numbers(d.path) for d in done] == [list(range(0, 21)), list(range(80, 101)),
                                                     list(range(160, 181))]


def test_cache_holds_what_it_should(numbered, tmp_path):
    seen = {}

    def look(p):
        rec = p["src"].recorder
        seen.update(first=rec.cache.items[0].t, last=rec.cache.items[-1].t, bytes=rec.cache.bytes,
                    keyframe=rec.cache.items[0].keyframe)
    run_with_trigger(numbered, tmp_path, {150: look})
    # 5 s cache: from the last keyframe with at least 5 s after it
    assert seen["keyframe"] and seen["last"] - seen["first"] >= 5 - 1e-6 and seen["first"] <= seen["last"] - 5
    assert seen["last"] - seen["first"] < 5 + 1.0 + 1e-6   # at most one GOP (1 s) more


def test_unwritable_folder_is_a_clear_error_and_the_pipeline_goes_on(numbered, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    errors = []

    def start(p):
        try:
            p.smart_record.start(0, start_before=1, duration=1)
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            errors.append(str(e))
    frames = []
    p = Pipeline()
    src = make_element("urisrc", "src", uri=numbered, smart_record=1, smart_rec_dir_path=str(blocked / "x"))
    sink = make_element("fakesink", "sink")
    p.add(src, sink)
    p.link(src, sink)
    src.src_pad.add_probe(lambda pad, b: start(p) if b.frames[0].frame_num == 30 else None)
    sink.sink_pad.add_probe(lambda pad, b: frames.extend(b.frames))
    p.run()
    assert errors == [f"{blocked / 'x'}: cannot create the clip folder (Not a directory); check smart-rec-dir-path"]
    assert len(frames) == 200


def test_smart_record_errors(numbered, tmp_path):
    p = Pipeline()
    src = make_element("urisrc", "src", uri=numbered)
    p.add(src, make_element("fakesink", "sink"))
    p.link(src, p["sink"])
    with pytest.raises(PropertyError, match="no source with smart record has source id 0"):
        p.smart_record.start(0)
    with pytest.raises(PropertyError, match="smart record is off; set smart-record=1"):
        src.start_recording()


RECORD_SCRIPT = r"""
import sys, time
import vidpipe
from vidpipe import Pipeline, make_element
p = Pipeline()
src = make_element("urisrc", "src", uri=sys.argv[1], live=True, smart_record=1, smart_rec_cache=5,
                   smart_rec_dir_path=sys.argv[2])
sink = make_element("fakesink", "sink")
p.add(src, sink)
p.link(src, sink)
def probe(pad, b):
    if b.frames[0].frame_num == 20:
        print("recording", p.smart_record.start(0, start_before=1, duration=60), flush=True)
src.src_pad.add_probe(probe)
p.bus.add_watch(lambda m: print("done", m.data.get("path"), flush=True) if m.type.value == "recording-done" else None)
p.run()
"""


def _recording_child(numbered, tmp_path):
    import subprocess
    import sys
    import time
    proc = subprocess.Popen([sys.executable, "-c", RECORD_SCRIPT, numbered, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    assert line.startswith("recording "), line
    path = line.split(" ", 1)[1].strip()
    time.sleep(3.2)        # live at 10 fps: about frame 52
    return proc, path


def _played_by_ffprobe(path):
    import subprocess
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=nb_read_frames", "-of", "csv=p=0", path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


@pytest.mark.skipif(not __import__("shutil").which("ffprobe"), reason="ffprobe is not installed")
def test_clip_of_a_killed_process_still_plays(numbered, tmp_path):
    """kill -9 mid-clip: the fragmented MP4 plays up to its last whole fragment (keyframe)."""
    proc, path = _recording_child(numbered, tmp_path)
    proc.kill()
    proc.wait()
    got = frame_numbers(path)
    assert got == list(range(10, 10 + len(got))) and len(got) >= 20     # from the keyframe at 10, in order
    assert _played_by_ffprobe(path) == len(got)


@pytest.mark.skipif(not __import__("shutil").which("ffprobe"), reason="ffprobe is not installed")
def test_ctrl_c_finalises_the_clip(numbered, tmp_path):
    import signal
    proc, path = _recording_child(numbered, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert f"done {path}" in out and proc.returncode == 0
    got = frame_numbers(path)
    assert got == list(range(10, 10 + len(got))) and 25 <= len(got) <= 60
    assert _played_by_ffprobe(path) == len(got)


def test_camera_lost_mid_clip_finalises_it(tmp_path):
    """An RTSP camera (vidpipe's own server, a real RTSP session) stops during a clip: the clip
    ends there, says why, and plays; the pipeline goes on reconnecting."""
    import time

    from conftest import free_port

    from vidpipe import parse_launch
    port = free_port()
    cam = parse_launch(f"videotestsrc is-live=1 width=320 height=240 ! rtspsink port={port} mount=/cam "
                       "iframeinterval=10 sync=0")
    cam.start()
    p = Pipeline()
    src = make_element("urisrc", "src", uri=f"rtsp://127.0.0.1:{port}/cam", smart_record=1, smart_rec_cache=5,
                       smart_rec_dir_path=str(tmp_path), timeout=1.0, reconnect_interval=0.3, reconnect_max=1.0)
    sink = make_element("fakesink", "sink")
    p.add(src, sink)
    p.link(src, sink)
    done = []
    p.smart_record.on_done.append(done.append)
    p.start()
    try:
        time.sleep(2.0)
        path = p.smart_record.start(0, start_before=1, duration=60)
        time.sleep(1.5)
        cam.stop()
        deadline = time.time() + 10
        while not done and time.time() < deadline:
            time.sleep(0.1)
        assert len(done) == 1 and done[0].path == path and done[0].error == "the stream was lost"
        assert done[0].duration > 1.5
        from vidpipe.media.reader import VideoReader
        with VideoReader(path) as r:
            n = sum(1 for _ in r)
        assert n == done[0].packets and n > 30
        assert p.is_running()
    finally:
        p.stop()
        cam.stop()


def test_annotated_clip_is_the_osd_output_re_encoded(numbered, tmp_path):
    """urisrc -> osd (draws a box) -> encoder -> smartrecord: the clip holds the drawn frames,
    re-encoded, with the same from-keyframe / to-t+d semantics on the encoder's packets."""
    from vidpipe.core.meta import Rect
    p = Pipeline()
    src = make_element("urisrc", "src", uri=numbered)
    osd = make_element("osd", "osd")
    enc = make_element("encoder", "enc", iframeinterval=10, tune="zerolatency")
    rec = make_element("smartrecord", "rec", dir_path=str(tmp_path), cache=5)
    p.add(src, osd, enc, rec)
    p.link(src, osd, enc, rec)

    def draw(pad, b):
        for f in b.frames:
            f.meta.display_meta.rects.append(Rect(100, 100, 60, 60, (255, 0, 0), 4, (255, 0, 0)))
    src.src_pad.add_probe(draw)

    def trigger(pad, b):
        if b.encoded and any(pk.pts * pk.time_base >= 5.7 for pk in b.encoded) and not trigger.done:
            trigger.t = rec.recorders[0].now      # t: the last packet the recorder has seen
            trigger.done = p.smart_record.start(0, start_before=2, duration=3, annotated=True)
    trigger.done = None
    rec.sink_pad.add_probe(trigger)
    done = []
    p.smart_record.on_done.append(done.append)
    p.run()
    assert len(done) == 1 and done[0].path == trigger.done
    got = frame_numbers(done[0].path)
    # from the keyframe (every 10 frames) at or before t - 2 to t + 3; t is frame 56 or later,
    # depending on how the encoder's packets were grouped into batches
    n = round(trigger.t * FPS)
    assert 56 <= n <= 60
    assert got == list(range((n - 20) // 10 * 10, n + 31))
    from vidpipe.media.reader import VideoReader
    with VideoReader(done[0].path) as r:
        img = next(iter(r)).image
    assert img[130, 130, 0] > 200 and img[130, 130, 1] < 60        # the box the osd drew is in the clip
    assert not {b for b, _ in packets(done[0].path)} & {b for b, _ in packets(numbered)}   # re-encoded
    with pytest.raises(PropertyError, match="needs a smartrecord element"):
        Pipeline().smart_record.start(0, annotated=True)


FULL_DISK_SCRIPT = r"""
import resource, signal, sys
from vidpipe import Pipeline, make_element
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a write past the limit fails (EFBIG) like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, resource.RLIM_INFINITY))
p = Pipeline()
src = make_element("urisrc", "src", uri=sys.argv[1], smart_record=1, smart_rec_dir_path=sys.argv[2])
sink = make_element("fakesink", "sink")
p.add(src, sink)
p.link(src, sink)
frames = []
sink.sink_pad.add_probe(lambda pad, b: frames.extend(b.frames) and None)
src.src_pad.add_probe(lambda pad, b: print("recording", p.smart_record.start(0, start_before=0, duration=100),
                                           flush=True) if b.frames[0].frame_num == 10 else None)
p.smart_record.on_done.append(lambda i: print("done", i.packets, i.error, flush=True))
p.run()
print("frames", len(frames), flush=True)
"""


def test_full_disk_ends_the_clip_playable_and_the_pipeline_goes_on(numbered, tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, numbered, str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    path = lines[0].split(" ", 1)[1]
    done = [ln for ln in lines if ln.startswith("done ")]
    assert len(done) == 1 and "write failed" in done[0] and "File too large" in done[0]
    assert lines[-1] == "frames 200"                       # the pipeline went on to the end
    got = frame_numbers(path)
    assert got == list(range(10, 10 + len(got))) and len(got) >= 10   # plays up to the last whole fragment
    assert os.path.getsize(path) <= 60_000


def test_clip_timed_from_the_frame_a_downstream_probe_saw(numbered, tmp_path):
    """The source runs ahead of a slow element; a probe at the end starts the clip with the
    frame it sees: the clip is timed from that frame, not from wherever the source is."""
    import time
    p = Pipeline()
    src = make_element("urisrc", "src", uri=numbered, smart_record=1, smart_rec_cache=10,
                       smart_rec_dir_path=str(tmp_path))
    slow = make_element("identity", "slow")
    sink = make_element("fakesink", "sink")
    p.add(src, slow, sink)
    p.link(src, slow, sink)
    slow.src_pad.add_probe(lambda pad, b: time.sleep(0.01))
    ahead = []

    def trigger(pad, b):
        f = b.frames[0]
        if f.frame_num == 57:
            ahead.append(src.recorder.now - f.pts_seconds)
            p.smart_record.start(f, start_before=2, duration=3)
    sink.sink_pad.add_probe(trigger)
    done = []
    p.smart_record.on_done.append(done.append)
    p.run()
    assert ahead[0] > 0.25                                  # the source was frames ahead
    assert frame_numbers(done[0].path) == list(range(30, 88))


def test_cli_records_clips_when_a_label_appears(clip, detector_config, tmp_path):
    import subprocess
    import sys
    clips = tmp_path / "clips"
    r = subprocess.run([sys.executable, "-m", "vidpipe", "run", clip[0], "--config", detector_config, "--smart-record",
                        str(clips), "--record-on", "green", "--record-before", "0", "--record-after", "0.4",
                        "--out", str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    started = [ln for ln in r.stdout.splitlines() if ln.startswith("recording stream 0 (green at ")]
    wrote = [ln for ln in r.stdout.splitlines() if ln.startswith("wrote ") and str(clips) in ln]
    assert started[0].startswith("recording stream 0 (green at 0.0 s): ")   # green is there from the start
    assert len(started) == 1 and len(wrote) == 1 == len(os.listdir(clips))   # and stays: one clip
    first = sorted(os.listdir(clips))[0]
    src = [b for b, _ in packets(clip[0])]
    got = [b for b, _ in packets(str(clips / first))]
    # from frame 0 (green is there at once) to 0.4 s at 25 fps, in decode order (B-frames: a few more)
    assert got == src[:len(got)] and 11 <= len(got) <= 14


def test_next_clip_started_from_the_done_callback(numbered, tmp_path):
    p = Pipeline()
    src = make_element("urisrc", "src", uri=numbered, smart_record=1, smart_rec_dir_path=str(tmp_path))
    p.add(src, make_element("fakesink", "sink"))
    p.link(src, p["sink"])
    def trigger(pad, b):
        if b.frames[0].frame_num == 20:
            p.smart_record.start(0, start_before=0, duration=1)
    src.src_pad.add_probe(trigger)
    done = []

    def chain(info):
        done.append(info)
        if len(done) == 1:   # called from inside the source's recording code: must not deadlock
            p.smart_record.start(0, start_before=0, duration=1)
    p.smart_record.on_done.append(chain)
    p.run()
    assert [frame_numbers(d.path) for d in done] == [list(range(20, 31)), list(range(30, 41))]
