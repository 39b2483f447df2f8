"""The bounded queue behind every sink pad.

queue.Queue does its waiting in Python (a Condition, a new lock per waiter), and at a few thousand
frames a second, with sixteen sources feeding one muxer, that was half of the CPU a frame cost
between a source and the muxer. Here all blocking is done by C: one SimpleQueue holds a token per
free place, another a token per queued item, and the items themselves sit in a deque under a plain
lock (held only to append, pop or drop, never while waiting).
"""
from __future__ import annotations

import threading
from collections import deque
from queue import Empty, Full, SimpleQueue
from typing import Any, Callable

__all__ = ["Empty", "Fifo", "Full"]


class Fifo:
    """put(item, timeout) / get(timeout) / qsize(), raising queue.Full / queue.Empty like
    queue.Queue; drop_oldest(pred) makes room for a leaky producer."""

    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError("a Fifo needs room for at least one item")
        self.maxsize = maxsize
        self._items: deque = deque()
        self._lock = threading.Lock()
        self._free: SimpleQueue = SimpleQueue()   # a token per free place
        self._ready: SimpleQueue = SimpleQueue()  # a token per queued item
        for _ in range(maxsize):
            self._free.put(None)

    def put(self, item: Any, timeout: float | None = None) -> None:
        try:
            self._free.get(timeout=timeout)
        except Empty:
            raise Full from None
        with self._lock:
            self._items.append(item)
        self._ready.put(None)

    def get(self, timeout: float | None = None) -> Any:
        self._ready.get(timeout=timeout)  # Empty on timeout
        with self._lock:
            item = self._items.popleft()
        self._free.put(None)
        return item

    def qsize(self) -> int:
        return len(self._items)

    def peek(self) -> Any:
        """The oldest item, left in place (None when empty); for a single consumer deciding
        whether to take it. A leaky producer may drop it before the consumer's get()."""
        items = self._items
        return items[0] if items else None

    def drop_oldest(self, pred: Callable[[Any], bool]) -> Any:
        """When full: removes the oldest item for which pred(item) is true and returns it (its
        place is free again); None when not full, or nothing may be dropped."""
        with self._lock:
            if len(self._items) < self.maxsize:
                return None
            for i, old in enumerate(self._items):
                if pred(old):
                    try:
                        self._ready.get_nowait()  # a consumer may hold every token, about to pop
                    except Empty:
                        return None
                    del self._items[i]
                    self._free.put(None)
                    return old
        return None
