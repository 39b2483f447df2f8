"""The bench's thread sampler attributes samples to the function a thread is in."""
from __future__ import annotations

import threading
import time

from vidpipe.bench.stages import ThreadSampler


def _spin(stop):
    while not stop.is_set():
        sum(range(1000))


def test_thread_sampler_names_the_busy_function():
    stop = threading.Event()
    t = threading.Thread(target=_spin, args=(stop,), name="spinner")
    with ThreadSampler(interval=0.001) as s:
        t.start()
        time.sleep(0.3)
        stop.set()
        t.join()
    top = dict(s.report()["spinner (leaf)"])
    assert top.get("test_stages.py:_spin", 0) >= 0.5, top
