"""The HTTP service: every REST endpoint (auth, malformed requests), /metrics parsed by
prometheus-client's parser, and the console in a real headless Chromium (live frames change,
stats update, a stream added and removed from the page)."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest
import requests
from conftest import ROOT, free_port

from vidpipe import Pipeline, make_element
from vidpipe.bench.browser import chromium_paths, launch

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARTIFACTS = os.environ.get("VIDPIPE_ARTIFACTS") or os.path.join(ROOT, "test-artifacts")


def live_pipeline(clip_path, detector_config, n=2):
    """n live looping streams of the squares clip -> infer (square detector) -> tiler? no: fakesink."""
    p = Pipeline()
    mux = make_element("streammux", "mux", batch_size=n, batched_push_timeout=40000, live_source=True)
    infer = make_element("infer", "infer", config_file_path=detector_config)
    sink = make_element("fakesink", "sink")
    for i in range(n):
        s = make_element("urisrc", f"cam{i}", uri=clip_path, live=True, file_loop=True)
        p.add(s)
        s.link(mux)
    p.link(mux, infer, sink)
    p.streams.defaults = {"live": True, "file_loop": True}
    return p


@pytest.fixture
def served(clip, detector_config):
    p = live_pipeline(clip[0], detector_config)
    objects: list[tuple[float, int]] = []
    p["sink"].sink_pad.add_probe(lambda pad, b: objects.extend((time.monotonic(), len(f.objects)) for f in b.frames)
                                 and None)
    p.start()
    svc = p.serve("127.0.0.1:0", token=TOKEN)
    try:
        yield p, svc, objects
    finally:
        p.stop()
        assert not svc._thread.is_alive()


def wait(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def metrics(url):
    from prometheus_client.parser import text_string_to_metric_families
    r = requests.get(url + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(fams, name, suffix=""):
    return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples if s.name == name + suffix}


def test_streams_pipeline_and_metrics(served):
    _, svc, _ = served
    u = svc.url + "/api/v1"
    assert wait(lambda: len(requests.get(u + "/streams", timeout=5).json()["streams"]) == 2
                and all(s["fps"] > 0 for s in requests.get(u + "/streams", timeout=5).json()["streams"]), 30)
    rows = requests.get(u + "/streams", timeout=5).json()["streams"]
    assert [(r["source_id"], r["name"], r["state"]) for r in rows] == [(0, "cam0", "playing"), (1, "cam1", "playing")]
    assert all(5 < r["fps"] < 40 and r["latency_ms"] is not None and r["video"] == f"/video/{r['source_id']}.mjpg"
               for r in rows)                                   # live at the clip's 25 fps
    assert requests.get(u + "/streams/1", timeout=5).json()["name"] == "cam1"
    assert requests.get(u + "/streams/cam0", timeout=5).json()["source_id"] == 0
    r = requests.get(u + "/streams/9", timeout=5)
    assert r.status_code == 404 and r.json() == {"error": "no stream '9'", "status": 404}
    pipe = requests.get(u + "/pipeline", timeout=5).json()
    assert pipe["state"] == "playing" and pipe["streams"] == 2 and pipe["elements"] == ["cam0", "cam1", "mux", "infer",
                                                                                       "sink"]
    fams = metrics(svc.url)
    frames = samples(fams, "vidpipe_stream_frames", "_total")
    assert set(frames) == {(("sensor_id", "0"), ("source_id", "0")), (("sensor_id", "1"), ("source_id", "1"))}
    assert all(v > 0 for v in frames.values())
    hist = fams["vidpipe_stream_latency_seconds"]
    counts = {s.labels["source_id"]: s.value for s in hist.samples if s.name.endswith("_count")}
    infs = {s.labels["source_id"]: s.value for s in hist.samples if s.labels.get("le") == "+Inf"}
    assert counts == infs and all(v > 0 for v in counts.values())
    busy = samples(fams, "vidpipe_element_busy_seconds", "_total")
    assert busy[(("element", "infer"), ("factory", "infer"))] > 0
    cpu = samples(fams, "vidpipe_element_cpu_seconds", "_total")  # read while the threads run
    assert cpu[(("element", "infer"), ("factory", "infer"))] > 0 and len(cpu) == len(busy)
    assert samples(fams, "vidpipe_pipeline_state")[(("state", "playing"),)] == 1
    assert "vidpipe_inference_seconds" in fams and "vidpipe_element_queue_depth" in fams
    before = frames[(("sensor_id", "0"), ("source_id", "0"))]
    assert wait(lambda: samples(metrics(svc.url), "vidpipe_stream_frames", "_total")[
        (("sensor_id", "0"), ("source_id", "0"))] > before)


def test_writes_need_the_token_and_bad_requests_are_4xx(served, clip):
    p, svc, _ = served
    u = svc.url + "/api/v1"
    body = {"uri": clip[0]}
    r = requests.post(u + "/streams", json=body, timeout=5)
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]
    r = requests.post(u + "/streams", json=body, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (403, "wrong token")
    for kw, status, text in (
            ({"data": "{not json", "headers": {**AUTH, "Content-Type": "application/json"}}, 400, "not valid JSON"),
            ({"data": "uri=x", "headers": {**AUTH, "Content-Type": "text/plain"}}, 415, "Content-Type: application/json"),
            ({"json": [1, 2], "headers": AUTH}, 400, "must be a JSON object"),
            ({"json": {"url": "x"}, "headers": AUTH}, 400, "'uri'"),
            ({"json": {"uri": "/nowhere/missing.mp4"}, "headers": AUTH}, 400, "missing.mp4"),
            ({"json": {"uri": clip[0], "options": {"no_such_prop": 1}}, "headers": AUTH}, 400, "no_such_prop")):
        r = requests.post(u + "/streams", timeout=5, **kw)
        assert r.status_code == status and text in r.json()["error"], (kw, r.text)
    r = requests.put(u + "/pipeline/state", json={"state": "sleeping"}, headers=AUTH, timeout=5)
    assert r.status_code == 400 and "playing, paused or stopped" in r.json()["error"]
    r = requests.post(u + "/streams/0/recording", json={}, headers=AUTH, timeout=5)
    assert r.status_code == 400 and "smart record" in r.json()["error"]
    r = requests.post(u + "/streams/0/recording", json={"duration": -1}, headers=AUTH, timeout=5)
    assert r.status_code == 400 and "'duration'" in r.json()["error"]
    assert requests.delete(u + "/streams/7", headers=AUTH, timeout=5).status_code == 400
    assert requests.get(svc.url + "/nope", timeout=5).status_code == 404
    assert requests.post(u + "/pipeline", headers=AUTH, timeout=5).status_code == 405
    assert requests.get(svc.url + "/static/../server.py", timeout=5).status_code == 404
    for raw in (b"\x16\x03\x01 TLS to the HTTP port\r\n\r\n", b"GET /api/v1 HTTP/1.1\r\nHost\r\n\r\n",
                b"BREW /pot HTCPCP/1.0 extra words\r\n\r\n"):
        with socket.create_connection((svc.host, svc.port), 5) as s:          # not HTTP at all
            s.sendall(raw)
            assert s.recv(200).split(b"\r\n")[0].endswith(b" 400 Bad Request"), raw
    # none of it disturbed the pipeline
    assert p.state == "playing" and len(p.streams.sources()) == 2 and not p.bus.errors()


def test_add_remove_pause_and_live_properties(served, clip):
    p, svc, objects = served
    u = svc.url + "/api/v1"
    r = requests.post(u + "/streams", json={"uri": clip[0], "sensor_id": "door"}, headers=AUTH, timeout=10)
    assert r.status_code == 201 and r.json()["source_id"] == 2 and r.json()["sensor_id"] == "door"
    assert wait(lambda: samples(metrics(svc.url), "vidpipe_stream_frames", "_total").get(
        (("sensor_id", "door"), ("source_id", "2")), 0) > 5)
    r = requests.delete(u + "/streams/door", headers=AUTH, timeout=15)
    assert r.status_code == 200 and r.json() == {"removed": 2}
    assert [s["source_id"] for s in requests.get(u + "/streams", timeout=5).json()["streams"]] == [0, 1]
    assert (("sensor_id", "door"), ("source_id", "2")) not in samples(metrics(svc.url), "vidpipe_stream_up")
    # pause holds the sources; play resumes
    assert requests.put(u + "/pipeline/state", json={"state": "paused"}, headers=AUTH, timeout=5).json() == \
        {"state": "paused"}
    time.sleep(0.4)
    n = len(objects)
    time.sleep(0.6)
    assert len(objects) == n and requests.get(u + "/streams", timeout=5).json()["streams"][0]["state"] == "paused"
    requests.put(u + "/pipeline/state", json={"state": "playing"}, headers=AUTH, timeout=5)
    assert wait(lambda: len(objects) > n + 10)
    # a live threshold: above every score, then back
    assert wait(lambda: objects[-1][1] == 3)                  # the clip's three squares
    r = requests.patch(u + "/elements/infer", json={"threshold": 1.5}, headers=AUTH, timeout=5)
    assert r.status_code == 200 and r.json() == {"name": "infer", "changed": {"threshold": 1.5}}
    t = time.monotonic()
    assert wait(lambda: len([c for at, c in objects if at > t + 0.3]) > 10)
    assert {c for at, c in objects if at > t + 0.3} == {0}
    requests.patch(u + "/elements/infer", json={"threshold": 0.5}, headers=AUTH, timeout=5)
    t = time.monotonic()
    assert wait(lambda: len([c for at, c in objects if at > t + 0.3]) > 10)
    assert {c for at, c in objects if at > t + 0.3} == {3}
    el = requests.get(u + "/elements/infer", timeout=5).json()
    assert el["properties"]["threshold"] == 0.5 and el["live_properties"] == ["enabled", "interval", "threshold"]
    for body, text in (({"model": "x.onnx"}, "'model' cannot change while running (can: enabled, interval, threshold)"),
                       ({"threshold": "high"}, "threshold"), ({"enabled": "no"}, "true or false"), ({}, "threshold")):
        r = requests.patch(u + "/elements/infer", json=body, headers=AUTH, timeout=5)
        assert r.status_code == 400 and text in r.json()["error"], r.text
    assert requests.patch(u + "/elements/nope", json={"enabled": False}, headers=AUTH, timeout=5).status_code == 404
    # enabled=false bypasses the element: no inference, frames still flow
    requests.patch(u + "/elements/infer", json={"enabled": False}, headers=AUTH, timeout=5)
    t = time.monotonic()
    assert wait(lambda: len([c for at, c in objects if at > t + 0.3]) > 10)
    assert {c for at, c in objects if at > t + 0.3} == {0}
    kinds = [e["type"] for e in requests.get(u + "/events", timeout=5).json()["events"]]
    assert "stream-removed" in kinds and kinds.count("element") >= 3


def test_live_jpeg_and_mjpeg(served):
    import cv2
    import numpy as np
    _, svc, _ = served
    r = requests.get(svc.url + "/video/0.jpg", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 320, 3)                          # the clip's size (under the 384 cap)
    assert abs(float(r.headers["X-Capture-Time"]) - time.time()) < 2
    with requests.get(svc.url + "/video/1.mjpg", stream=True, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        buf, parts = b"", []
        for chunk in resp.iter_content(8192):
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                n = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0].split(b":")[1])
                if len(rest) < n + 2:
                    break
                parts.append(rest[:n])
                buf = rest[n + 2:]
            if len(parts) >= 5:
                break
    frames = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in parts]
    assert all(f.shape == (240, 320, 3) for f in frames)
    assert any(np.abs(frames[0].astype(int) - f.astype(int)).mean() > 1 for f in frames[1:])   # it moves
    # ?boxes=json: the boxes beside the JPEG (the console draws them), the same frame size
    with requests.get(svc.url + "/video/0.mjpg?boxes=json", stream=True, timeout=10) as resp:
        buf = b""
        for chunk in resp.iter_content(8192):
            buf += chunk
            if b"\r\n\r\n" in buf:
                break
    head = dict(ln.split(": ", 1) for ln in buf.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:])
    objs = json.loads(head["X-Objects"])
    assert sorted(o[4] for o in objs) == ["blue", "green", "red"]               # the square detector's labels
    assert all(0 <= o[0] < o[2] <= 320 and 0 <= o[1] < o[3] <= 240 for o in objs)
    assert wait(lambda: sum(svc.monitor.viewers.values()) == 0)   # the closed view stops the encoding


def test_openapi_lists_every_route(served):
    _, svc, _ = served
    spec = requests.get(svc.url + "/api/v1/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.")
    routes = {}
    for res in svc.app().router.resources():
        path = res.canonical
        if path in ("/", "/static/{name}"):
            continue
        for route in res:
            if route.method != "HEAD":
                routes.setdefault(path, set()).add(route.method.lower())
    documented = {path: set(ops) for path, ops in spec["paths"].items()}
    assert documented == routes
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert ("security" in op) == (method in ("post", "put", "patch", "delete")), (path, method)


def test_cli_http_flag_and_port_in_use(clip, tmp_path):
    import subprocess
    import sys
    port = free_port()
    busy = socket.socket()
    busy.bind(("127.0.0.1", port))
    busy.listen()
    try:
        r = subprocess.run([sys.executable, "-m", "vidpipe", "run", clip[0], "--http", f"127.0.0.1:{port}",
                            "--out", str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=120)
    finally:
        busy.close()
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"127.0.0.1:{port}: cannot listen there" in r.stderr and "pick another port" in r.stderr
    r = subprocess.run([sys.executable, "-m", "vidpipe", "run", clip[0], "--http", "localhost:http"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "expected HOST:PORT" in r.stderr and "Traceback" not in r.stderr


# -- the console in a real browser ------------------------------------------------------------------
CHROMIUM, DRIVER = chromium_paths()
needs_chromium = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromium-driver are not installed "
                                    "(bash scripts/setup.sh --test)")


def shot(driver, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver.save_screenshot(os.path.join(ARTIFACTS, name))


@needs_chromium
def test_console_in_chromium(served, clip):
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By
    p, svc, _ = served
    d = launch()
    try:
        d.get(f"{svc.url}/#token={TOKEN}")
        assert d.title == "vidpipe console"
        js = d.execute_script
        assert wait(lambda: js("return Object.keys(window.vidpipe.views).length") == 2, 15)
        assert wait(lambda: all(js(f"return window.vidpipe.views[{i}].frames") > 3 for i in (0, 1)), 15)
        canvas = d.find_elements(By.CSS_SELECTOR, ".tile canvas")[0]

        def pixels():
            import io
            return np.asarray(Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB"), np.int16)
        a = pixels()
        time.sleep(0.5)
        b = pixels()
        assert a.shape == b.shape and np.abs(a - b).mean() > 0.5        # live frames advance
        assert a.std() > 5                                               # and show something
        frames_text = d.find_elements(By.CSS_SELECTOR, ".tile .frames")[0].text
        assert wait(lambda: d.find_elements(By.CSS_SELECTOR, ".tile .frames")[0].text != frames_text)  # stats update
        assert wait(lambda: js("return window.vidpipe.polls") >= 3)
        shot(d, "console-2-streams.png")
        # add a stream from the page
        d.find_element(By.ID, "add-uri").send_keys(clip[0])
        d.find_element(By.ID, "add-sensor").send_keys("yard")
        d.find_element(By.CSS_SELECTOR, "#add-form button").click()
        assert wait(lambda: len(d.find_elements(By.CSS_SELECTOR, ".tile")) == 3, 15)
        assert wait(lambda: js("return (window.vidpipe.views[2] || {frames: 0}).frames") > 3, 15)
        assert (("sensor_id", "yard"), ("source_id", "2")) in samples(metrics(svc.url), "vidpipe_stream_up")
        assert "yard" in d.find_elements(By.CSS_SELECTOR, ".tile .name")[2].text
        lat = js("return window.vidpipe.views[0].latencies.slice(-20)")
        assert lat and all(0 <= x < 3000 for x in lat)                   # glass to browser, milliseconds
        shot(d, "console-3-streams.png")
        # events list shows the addition; charts have drawn
        assert wait(lambda: "added" in d.find_element(By.ID, "events").text, 10)
        # remove it from the page
        d.find_elements(By.CSS_SELECTOR, ".tile .remove")[2].click()
        assert wait(lambda: len(d.find_elements(By.CSS_SELECTOR, ".tile")) == 2, 15)
        assert (("sensor_id", "yard"), ("source_id", "2")) not in samples(metrics(svc.url), "vidpipe_stream_up")
        assert [s["source_id"] for s in p.streams.info()] == [0, 1]
        # a wrong token: the page says why, nothing changes
        js("localStorage.setItem('vidpipe-token', 'wrong')")
        d.find_element(By.ID, "add-uri").send_keys(clip[0])
        d.find_element(By.CSS_SELECTOR, "#add-form button").click()
        assert wait(lambda: d.find_element(By.ID, "message").text == "wrong token")
        assert len(p.streams.sources()) == 2
        # a phone: one column, nothing wider than the screen
        d.set_window_size(390, 844)
        time.sleep(0.5)
        assert js("return document.documentElement.scrollWidth <= window.innerWidth")
        xs = {t.location["x"] for t in d.find_elements(By.CSS_SELECTOR, ".tile")}
        assert len(xs) == 1
        shot(d, "console-phone.png")
    finally:
        d.quit()


def test_smart_record_over_http(tmp_path):
    """POST .../recording cuts a clip of the source's own packets; DELETE ends it early."""
    from test_smart_record import FPS, frame_numbers

    from vidpipe.synthetic import background, stamp_number, write_video
    clip = str(tmp_path / "numbered.mp4")
    write_video(clip, (stamp_number(background(320, 240), n) for n in range(300)), width=320, height=240, fps=FPS,
                keyint=10, tune="zerolatency")
    p = Pipeline()
    cam = make_element("urisrc", "cam", uri=clip, live=True, smart_record=1, smart_rec_cache=5,
                       smart_rec_dir_path=str(tmp_path))
    mux = make_element("streammux", "mux", batch_size=1, live_source=True, batched_push_timeout=40000)
    p.add(cam)
    p.link(mux, make_element("fakesink", "sink"))
    cam.link(mux)
    done = []
    p.smart_record.on_done.append(done.append)
    p.start()
    svc = p.serve("127.0.0.1:0", token=TOKEN)
    u = svc.url + "/api/v1/streams/cam/recording"
    try:
        time.sleep(1.5)
        r = requests.post(u, json={"start_before": 1, "duration": 1}, headers=AUTH, timeout=5)
        assert r.status_code == 201 and r.json()["path"].startswith(str(tmp_path))
        assert wait(lambda: done, 10)
        numbers = frame_numbers(done[0].path)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[0] % 10 == 0
        assert 2.0 * FPS <= len(numbers) <= 3.2 * FPS          # 1 s before (from a keyframe) + 1 s
        r = requests.post(u, json={"duration": 30}, headers=AUTH, timeout=5)   # a long one, stopped early
        assert r.status_code == 201
        time.sleep(0.5)
        r = requests.delete(u, headers=AUTH, timeout=5)
        assert r.status_code == 200
        assert wait(lambda: len(done) == 2, 10) and done[1].duration < 10 and r.json()["path"] == done[1].path
        r = requests.delete(u, headers=AUTH, timeout=5)
        assert r.status_code == 404 and "not recording" in r.json()["error"]
        assert any(e["type"] == "recording-done" for e in
                   requests.get(svc.url + "/api/v1/events", timeout=5).json()["events"])
    finally:
        p.stop()


def test_analytics_events_reach_the_event_list():
    """Line crossings of a frame, and overcrowding as it starts and ends, become console events."""
    import numpy as np

    from vidpipe.analytics.engine import AnalyticsFrameMeta
    from vidpipe.core.meta import Batch, Frame
    from vidpipe.service.monitor import Monitor
    m = Monitor()
    try:
        metas = [AnalyticsFrameMeta(obj_lc_curr_cnt={"door": 2}, obj_lc_cum_cnt={"door": 5}, oc_status={"hall": True},
                                    oc_count={"hall": 7}),
                 AnalyticsFrameMeta(obj_lc_curr_cnt={"door": 0}, lc_curr_against={"door": 1},
                                    lc_cum_against={"door": 1}, oc_status={"hall": True}, oc_count={"hall": 8}),
                 AnalyticsFrameMeta(oc_status={"hall": False})]
        for n, meta in enumerate(metas):
            f = Frame(np.zeros((8, 8, 3), np.uint8), 3, n)
            f.meta.user_meta["analytics"] = meta
            m.probe(None, Batch([f]))
        assert [e["text"] for e in m.recent_events()] == [
            "stream 3: 2 crossed door (total 5)", "stream 3: hall overcrowded (7 objects)",
            "stream 3: 1 crossed door the other way (total 1)", "stream 3: hall no longer overcrowded"]
        assert {e["type"] for e in m.recent_events()} == {"analytics"}
    finally:
        m.close()


def test_yaml_and_flow_serve(clip, tmp_path):
    """`http:` in a pipeline YAML (checked with file:line:key) and Flow.serve() start the service."""
    from vidpipe.config.pipeline_yaml import load_pipeline_yaml
    from vidpipe.errors import ConfigError
    from vidpipe.flow import Flow
    y = tmp_path / "p.yaml"
    y.write_text(f"name: cams\nhttp: 127.0.0.1:0\nlaunch: urisrc uri={clip[0]} ! streammux ! fakesink\n")
    assert load_pipeline_yaml(str(y)).serve_address == "127.0.0.1:0"
    y.write_text(f"http: somewhere\nlaunch: urisrc uri={clip[0]} ! streammux ! fakesink\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:1: http: .*expected HOST:PORT"):
        load_pipeline_yaml(str(y))
    p = Flow().capture(clip[0]).serve("127.0.0.1:0").run()     # served while it ran, stopped with it
    assert len(p.services) == 1 and p.services[0].port > 0 and not p.services[0]._thread.is_alive()
    assert p.services[0].monitor.stream_stats(0)["frames"] == 30   # the console's tap saw every frame
