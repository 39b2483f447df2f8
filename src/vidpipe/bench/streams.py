"""`vidpipe bench --suite streams`: aggregate FPS of N streams in one vidpipe pipeline against N
independent hand-written loops (one process each, as a user running N scripts), same run.

Both do decode -> the default detector -> draw boxes, on a synthetic H.264 clip made in the run
(moving squares on texture, 25 fps). vidpipe: N urisrc -> streammux(batch N) -> infer -> osd ->
fakesink. Loop: PyAV decode, to_ndarray("rgb24"), cv2.resize, LiteRT (all cores), cv2 drawing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

LOOP = r'''
import sys, time, av, cv2, os
from ai_edge_litert.interpreter import Interpreter
clip, model, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
it = Interpreter(model_path=model, num_threads=os.cpu_count()); it.allocate_tensors()
inp = it.get_input_details()[0]; outs = it.get_output_details(); _, H, W, _ = inp["shape"]
print("ready", flush=True); sys.stdin.readline()
n = found = 0
with av.open(clip) as c:
    c.streams.video[0].thread_type = "AUTO"
    for f in c.decode(video=0):
        img = f.to_ndarray(format="rgb24"); h, w = img.shape[:2]
        it.set_tensor(inp["index"], cv2.resize(img, (W, H))[None]); it.invoke()
        boxes = it.get_tensor(outs[0]["index"])[0]; scores = it.get_tensor(outs[2]["index"])[0]
        for i in range(int(it.get_tensor(outs[3]["index"])[0])):
            if scores[i] >= 0.4:
                found += 1
                y1, x1, y2, x2 = boxes[i]
                cv2.rectangle(img, (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h)), (0, 255, 0), 2)
        n += 1
        if n >= frames: break
print(n, found, flush=True)
'''


def loops(clip: str, model: str, streams: int, frames: int) -> tuple[float, int]:
    procs = [subprocess.Popen([sys.executable, "-c", LOOP, clip, model, str(frames)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(streams)]
    for p in procs:
        p.stdout.readline()  # model loaded
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    counts = [tuple(int(v) for v in p.communicate()[0].split()) for p in procs]
    return sum(n for n, _ in counts) / (time.perf_counter() - t0), sum(k for _, k in counts)


def pipeline(clip: str, streams: int, frames: int) -> tuple[float, int]:
    from ..assets import default_infer_config
    from ..core.perf import PerfMonitor
    from ..flow import Flow
    flow = Flow(batch_size=streams).capture(*([clip] * streams), num_buffers=frames)
    flow.infer(default_infer_config(0.4)).osd().sink("fakesink")
    p = flow.build()
    perf = PerfMonitor(p["sink"].sink_pad)
    p.start()  # model loaded and sources opened before the clock starts, as for the loops
    t0 = time.perf_counter()
    p.run(handle_signals=False)
    return perf.frames / (time.perf_counter() - t0), sum(perf.objects.values())


def run(stream_counts=(1, 4, 8, 16), sizes=((640, 360), (1280, 720)), frames: int = 100) -> list[dict]:
    from ..assets import default_model
    from ..synthetic import make_clip
    model, _ = default_model()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidpipe-streams-") as tmp:
        for w, h in sizes:
            clip = os.path.join(tmp, f"clip_{w}x{h}.mp4")
            make_clip(clip, frames=frames, width=w, height=h, crf=23)
            for n in stream_counts:
                lf, lo = loops(clip, model, n, frames)
                vf, vo = pipeline(clip, n, frames)
                rows.append({"size": f"{w}x{h}", "streams": n, "loops_fps": round(lf, 1), "vidpipe_fps": round(vf, 1),
                             "ratio": round(vf / lf, 2), "loops_objects": lo, "vidpipe_objects": vo})
                print(f"{w}x{h:<6}{n:>8}{lf:>12.1f}{vf:>14.1f}{vf / lf:>8.2f}x  objects {lo}/{vo}", flush=True)
    return rows
