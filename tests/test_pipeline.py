"""End to end on synthetic clips with a detector whose answers are known."""
import numpy as np
import pytest

import vidpipe
from vidpipe import PadProbeReturn, Pipeline, make_element
from vidpipe.core.bus import MessageType

from conftest import H, W, decode_all, iou


def build(clip_paths, config, out=None, batch_size=None, sink="fakesink", **infer_props):
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=batch_size or len(clip_paths))
    p.add(mux)
    for i, c in enumerate(clip_paths):
        src = make_element("urisrc", f"src{i}", uri=c)
        p.add(src)
        src.link(mux)
    infer = make_element("infer", "pgie", config_file_path=config, **infer_props)
    sink = make_element(sink, "sink")
    chain = [mux, infer]
    if out:
        chain += [make_element("osd", "osd"), make_element("encoder", "enc"), make_element("filesink", "fs", location=out)]
        p.link(*chain)
        return p
    p.link(*chain, sink)
    return p


def collect(p, pad_owner="pgie"):
    got = []
    p[pad_owner].src_pad.add_probe(lambda pad, b: got.extend(b.frames))
    return got


def test_detections_match_truth_on_every_frame(clip, detector_config):
    path, truth = clip
    p = build([path], detector_config)
    frames = collect(p)
    p.run()
    assert [f.frame_num for f in frames] == list(range(len(truth)))
    for f in frames:
        objs = {o.class_id: o for o in f.objects}
        assert set(objs) == {0, 1, 2}, f"frame {f.frame_num}"
        for cid, box in truth[f.frame_num].items():
            assert iou(objs[cid].bbox.as_xyxy(), box) >= 0.9, (f.frame_num, cid, objs[cid].bbox, box)
            assert objs[cid].label == ["red", "green", "blue"][cid]
            assert objs[cid].component_id == 1
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8


def test_output_mp4_has_every_frame_and_boxes_drawn(clip, detector_config, tmp_path):
    from vidpipe.elements.osd import class_color
    path, truth = clip
    out = str(tmp_path / "out.mp4")
    p = build([path], detector_config, out=out)
    p["osd"].set_property("border-width", 4)
    p["enc"].set_property("crf", 10)
    p.run()
    frames = decode_all(out)
    src = decode_all(path)
    assert len(frames) == len(truth)
    for t in (0, len(truth) // 2, len(truth) - 1):
        img = frames[t].astype(int)
        x1, y1, x2, y2 = truth[t][1]  # green square: box drawn in class 1's colour on its border
        color = np.array(class_color(1))
        # the left border (4 px, centred on the box edge) has the class colour
        ys = slice(y1 + 14, y2 - 2)
        col = np.median(img[ys, max(x1 - 2, 0):x1 + 2].reshape(-1, 3), axis=0)
        assert np.abs(col - color).max() < 45, (t, col, color)
        # far from every square the picture is what the source had
        far = np.abs(img[H - 6:H - 2, :] - src[t][H - 6:H - 2, :].astype(int))
        assert far.mean() < 4
        inside = img[(y1 + y2) // 2, (x1 + x2) // 2]
        assert inside[1] > 150 and inside[0] < 90  # the square itself stays green


def test_probe_edits_and_drops(clip, detector_config, tmp_path):
    path, truth = clip
    p = build([path], detector_config, sink="appsink")
    sink_frames = []
    p["sink"].set_property("callback", lambda b: sink_frames.extend(b.frames))

    def edit(pad, batch):
        for f in batch.frames:
            if f.frame_num % 2:
                return PadProbeReturn.DROP           # odd frames dropped
            f.objects[:] = [o for o in f.objects if o.class_id != 2]  # blue removed
            f.user_meta["tag"] = f.frame_num * 10
            f.image[0:4, 0:4] = (1, 2, 3)
        return PadProbeReturn.OK

    p["pgie"].src_pad.add_probe(edit)
    p.run()
    assert [f.frame_num for f in sink_frames] == list(range(0, len(truth), 2))
    for f in sink_frames:
        assert sorted(o.class_id for o in f.objects) == [0, 1]
        assert f.user_meta["tag"] == f.frame_num * 10
        assert (f.image[0:4, 0:4] == (1, 2, 3)).all()


def test_probe_remove_runs_once(clip, detector_config):
    path, _ = clip
    p = build([path], detector_config)
    calls = []
    p["pgie"].src_pad.add_probe(lambda pad, b: (calls.append(b.frames[0].frame_num), PadProbeReturn.REMOVE)[1])
    p.run()
    assert calls == [0]


def test_batched_streams_complete_and_in_order(clip, clip2, detector_config):
    (a, ta), (b, tb) = clip, clip2
    p = build([a, b, a], detector_config, batch_size=2)
    batches = []
    p["pgie"].src_pad.add_probe(lambda pad, bt: batches.append([(f.source_id, f.frame_num) for f in bt.frames]))
    per = {0: [], 1: [], 2: []}
    objs = {}
    def keep(pad, bt):
        for f in bt.frames:
            objs[(f.source_id, f.frame_num)] = f.objects
    p["pgie"].src_pad.add_probe(keep)
    p.run()
    assert all(1 <= len(x) <= 2 for x in batches)
    assert sum(len(x) for x in batches) == len(ta) * 2 + len(tb)
    for x in batches:
        for sid, n in x:
            per[sid].append(n)
    assert per[0] == list(range(len(ta))) and per[2] == list(range(len(ta))) and per[1] == list(range(len(tb)))
    for (sid, n), olist in objs.items():
        truth = tb if sid == 1 else ta
        got = {o.class_id: o.bbox.as_xyxy() for o in olist}
        for cid, box in truth[n].items():
            assert iou(got[cid], box) >= 0.9


def test_bus_messages_and_eos(clip, detector_config):
    path, truth = clip
    p = build([path], detector_config)
    seen = []
    p.bus.add_watch(lambda m: seen.append(m.type))
    p.run()
    assert MessageType.STREAM_ADDED in seen and MessageType.STREAM_EOS in seen
    assert seen[-1] is MessageType.EOS
    assert MessageType.ERROR not in seen


def test_element_error_reports_and_finalises_output(clip, detector_config, tmp_path):
    path, truth = clip
    out = str(tmp_path / "partial.mp4")
    p = build([path], detector_config, out=out)

    def boom(pad, batch):
        if batch.frames[0].frame_num == 10:
            raise RuntimeError("probe exploded")
    p["osd"].sink_pad.add_probe(boom)
    with pytest.raises(vidpipe.PipelineError, match="probe exploded"):
        p.run()
    frames = decode_all(out)
    assert len(frames) == 10  # frames before the error, in a finalised file


def test_interval_skips_batches(clip, detector_config):
    path, truth = clip
    p = build([path], detector_config, interval=2)
    frames = collect(p)
    p.run()
    with_objs = [f.frame_num for f in frames if f.objects]
    assert with_objs == list(range(0, len(truth), 3))


def test_muxer_scaling_maps_to_scaled_frames(clip, detector_config):
    path, truth = clip
    p = build([path], detector_config)
    p["mux"].set_property("width", W * 2)
    p["mux"].set_property("height", H * 2)
    frames = collect(p)
    p.run()
    f = frames[5]
    assert f.image.shape == (H * 2, W * 2, 3) and f.source_size == (W, H)
    got = {o.class_id: o.bbox.as_xyxy() for o in f.objects}
    for cid, box in truth[5].items():
        assert iou(got[cid], [v * 2 for v in box]) >= 0.85


def test_flow_api(clip, detector_config, tmp_path):
    from vidpipe.flow import Flow
    path, truth = clip
    out = str(tmp_path / "flow.mp4")
    counts = []
    (Flow().capture(path).infer(detector_config).probe(lambda pad, b: counts.append(len(b.frames[0].objects)))
     .osd().encode(out).run())
    assert counts == [3] * len(truth)
    assert len(decode_all(out)) == len(truth)


def test_stop_mid_run_finalises(tmp_path, detector_config):
    import threading
    from vidpipe.synthetic import make_clip
    long = str(tmp_path / "long.mp4")
    make_clip(long, frames=40, width=W, height=H)
    out = str(tmp_path / "stopped.mp4")
    p = build([long], detector_config, out=out)
    p["src0"].set_property("file-loop", True)
    p.start()
    seen = threading.Event()
    written = []
    p["fs"].sink_pad.add_probe(lambda pad, b: (written.extend(b.encoded or ()), seen.set()) and None)
    assert seen.wait(30)
    p.stop()
    assert not p.is_running()
    assert len(written) > 0
    assert len(decode_all(out)) == len(written)  # every packet that reached the sink is a frame in the file


def test_appsink_iterator(clip, detector_config):
    path, truth = clip
    p = build([path], detector_config, sink="appsink")
    p.start()
    got = [b.frames[0].frame_num for b in p["sink"]]
    p.wait()
    assert got == list(range(len(truth)))


def test_failure_in_muxer_still_ends_cleanly(clip, clip2, detector_config, tmp_path):
    import time
    p = build([clip[0], clip2[0]], detector_config, out=str(tmp_path / "m_%d.mp4"))
    calls = []

    def bad_scale(frame):
        calls.append(1)
        if len(calls) == 5:
            raise ValueError("scaler broke")
        return frame
    p["mux"]._scale = bad_scale
    p["mux"].set_property("width", W)
    p["mux"].set_property("height", H)
    t0 = time.monotonic()
    with pytest.raises(vidpipe.PipelineError, match="ERROR from mux: ValueError: scaler broke"):
        p.run()
    assert time.monotonic() - t0 < 8  # drained, not aborted after the stop timeout
    assert not p.is_running()


def test_batch_fills_to_batch_size(clip, detector_config):
    path, truth = clip
    p = build([path], detector_config, batch_size=4)
    sizes = []
    p["pgie"].src_pad.add_probe(lambda pad, b: sizes.append([f.frame_num for f in b.frames]))
    p.run()
    assert [len(s) for s in sizes] == [4] * (len(truth) // 4) + ([len(truth) % 4] if len(truth) % 4 else [])
    assert sum(sizes, []) == list(range(len(truth)))


def test_frames_are_freed_without_the_cycle_collector():
    """A frame (and its picture) goes as soon as nothing refers to it: no reference cycle
    (FrameMeta -> Frame was one, and decoded pictures piled up until the GC ran)."""
    import gc
    import weakref

    from vidpipe import Batch, BBox, Frame, ObjectMeta
    gc.disable()
    try:
        f = Frame(np.zeros((720, 1280, 3), np.uint8), 0, 0)
        f.objects.append(ObjectMeta(1, BBox(1, 2, 3, 4), 0.5, "x"))
        b = Batch([f])
        assert b.frames[0].meta.frame is f and len(f.meta.objects) == 1
        ref = weakref.ref(f)
        del f, b
        assert ref() is None
    finally:
        gc.enable()


def test_stats_give_each_element_threads_cpu_time(clip, detector_config):
    """stats()[name]["cpu_s"]: the CPU time of the element's own thread (a probe's work counts
    where it runs), and "completion_cpu_s" for infer's completion threads."""
    import time
    p = Pipeline()
    src = make_element("urisrc", "src", uri=clip[0])
    mux = make_element("streammux", "mux", batch_size=1)
    infer = make_element("infer", "infer", config_file_path=detector_config, workers=2)
    sink = make_element("fakesink", "sink")
    p.add(src, mux, infer, sink)
    src.link(mux)
    p.link(mux, infer, sink)

    def burn(pad, batch):  # runs in the muxer's thread
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.02:
            pass
    mux.src_pad.add_probe(burn)
    p.run()
    st = p.stats()
    frames = st["mux"]["frames"]
    assert frames == len(clip[1])
    assert st["mux"]["cpu_s"] >= 0.02 * frames
    assert st["sink"]["cpu_s"] < 0.02 * frames / 4
    assert st["infer"]["completion_cpu_s"] > 0 and all(st[k]["cpu_s"] > 0 for k in ("src", "infer"))


def test_cpu_time_is_read_while_an_element_runs(clip):
    """stats()["cpu_s"] grows while the element's thread is still running (Linux reads any
    thread's CPU clock), not only when it ends."""
    import threading
    import time
    p = Pipeline()
    src = make_element("urisrc", "src", uri=clip[0], file_loop=True, num_buffers=100000)
    mux = make_element("streammux", "mux", batch_size=1)
    sink = make_element("fakesink", "sink")
    p.add(src, mux, sink)
    src.link(mux)
    p.link(mux, sink)

    def burn(pad, batch):
        t0 = time.thread_time()
        while time.thread_time() - t0 < 0.005:
            pass
    mux.src_pad.add_probe(burn)
    seen = []
    t = threading.Thread(target=p.run)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < 2:
            cpu = p.stats()["mux"]["cpu_s"]
            if cpu > 0.1 and (not seen or cpu > seen[-1] + 0.05):
                seen.append(cpu)
            time.sleep(0.1)
        assert len(seen) == 2 and t.is_alive()
    finally:
        p.send_eos()
        t.join(30)
    assert not t.is_alive()


def test_pipeline_switch_interval_applies_while_it_runs(clip):
    """Pipeline.switch_interval is the interpreter's switch interval while the pipeline runs, the
    shortest of overlapping pipelines wins, the interpreter's own comes back when the last ends;
    None and 0 leave it alone."""
    import sys
    default = sys.getswitchinterval()

    def pipeline(seconds, frames=3):
        p = Pipeline()
        p.switch_interval = seconds
        src = make_element("urisrc", "src", uri=clip[0], num_buffers=frames)
        mux = make_element("streammux", "mux", batch_size=1)
        p.add(src, mux, make_element("fakesink", "sink"))
        src.link(mux)
        p.link(mux, p["sink"])
        seen = []
        mux.src_pad.add_probe(lambda pad, b: seen.append(sys.getswitchinterval()))
        return p, seen

    p, seen = pipeline(0.002)
    p.run()
    assert seen == [0.002] * 3 and sys.getswitchinterval() == default
    a, seen_a = pipeline(0.002, frames=10**6)
    b, seen_b = pipeline(0.001)
    a.start()
    b.run()  # runs while a does: the shorter applies, then a's own again
    assert set(seen_b) == {0.001} and sys.getswitchinterval() == 0.002
    a.stop()
    assert set(seen_a) <= {0.002, 0.001} and sys.getswitchinterval() == default
    for unset in (0, None):
        p, seen = pipeline(unset)
        p.run()
        assert seen == [default] * 3 and sys.getswitchinterval() == default


def test_fifo_bounds_orders_and_times_out():
    """The pads' queue: FIFO, at most maxsize items, Full / Empty after the timeout (as
    queue.Queue), drop_oldest only when full and only what the predicate allows."""
    import queue
    import time

    from vidpipe.core.fifo import Fifo
    q = Fifo(3)
    for x in ("a", 1, "b"):
        q.put(x, timeout=0.1)
    assert q.qsize() == 3
    t0 = time.monotonic()
    with pytest.raises(queue.Full):
        q.put("c", timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    assert q.drop_oldest(lambda x: isinstance(x, int)) == 1 and q.qsize() == 2
    assert q.drop_oldest(lambda x: True) is None  # not full: nothing dropped
    q.put("c", timeout=0.1)
    assert q.drop_oldest(lambda x: x == "zzz") is None and q.qsize() == 3
    assert [q.get(timeout=0.1) for _ in range(3)] == ["a", "b", "c"]
    with pytest.raises(queue.Empty):
        q.get(timeout=0.02)


def test_fifo_many_producers_one_consumer_lose_nothing():
    """16 producers (some dropping their oldest item when full, as live sources do) and one
    consumer: every item arrives once or was dropped, and each producer's items arrive in order."""
    import threading
    import time

    from vidpipe.core.fifo import Fifo
    q, n, per = Fifo(8), 16, 2000
    dropped = [[] for _ in range(n)]

    def produce(p):
        for i in range(per):
            if p % 4 == 0:
                old = q.drop_oldest(lambda e: e[0] == p)
                if old is not None:
                    dropped[p].append(old[1])
            q.put((p, i), timeout=10)
        q.put((p, None), timeout=10)

    got = [[] for _ in range(n)]
    ts = [threading.Thread(target=produce, args=(p,)) for p in range(n)]
    [t.start() for t in ts]
    time.sleep(0.05)  # the queue is full before the consumer starts: the leaky ones must drop
    ended = 0
    while ended < n:
        p, i = q.get(timeout=10)
        if i is None:
            ended += 1
        else:
            got[p].append(i)
    [t.join() for t in ts]
    assert q.qsize() == 0
    for p in range(n):
        assert got[p] == sorted(got[p])
        assert sorted(got[p] + dropped[p]) == list(range(per)), p
        if p % 4:
            assert not dropped[p]
    assert any(dropped[p] for p in range(0, n, 4))  # the leaky producers did drop
