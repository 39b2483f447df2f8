"""The pipeline bus: messages from elements to the application."""
from __future__ import annotations

import enum
import queue
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


class MessageType(enum.Enum):
    EOS = "eos"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    STREAM_ADDED = "stream-added"
    STREAM_REMOVED = "stream-removed"
    STREAM_EOS = "stream-eos"
    STREAM_GAP = "stream-gap"          # a live stream was lost and is being reconnected
    STREAM_RESUMED = "stream-resumed"
    RECORDING_DONE = "recording-done"  # a smart-record clip is finished (data: path, first_pts, last_pts, error)
    ELEMENT = "element"


@dataclass
class Message:
    type: MessageType
    source: str  # element name
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def __str__(self) -> str:
        return f"{self.type.value.upper()} from {self.source}: {self.text}"


class Bus:
    """Elements post from their threads; watches run in the thread that calls `dispatch()`
    (Pipeline.wait/run call it), so application callbacks never race element threads."""

    def __init__(self) -> None:
        self._q: queue.Queue[Message] = queue.Queue()
        self._watches: list[Callable[[Message], Any]] = []
        self.history: deque[Message] = deque(maxlen=1000)  # the latest messages dispatched
        self._errors: list[Message] = []
        self._listeners: list[Callable[[Message], Any]] = []

    def post(self, kind: str | MessageType, source: Any, text: str, **data: Any) -> None:
        mtype = kind if isinstance(kind, MessageType) else MessageType(kind)
        name = getattr(source, "name", str(source))
        msg = Message(mtype, name, text, data)
        for cb in self._listeners:
            cb(msg)
        self._q.put(msg)

    def add_listener(self, callback: Callable[[Message], Any]) -> None:
        """`callback(message)` in the posting thread, as it is posted (for services that must
        see messages whether or not the application dispatches: keep it short, thread-safe)."""
        self._listeners = [*self._listeners, callback]

    def remove_listener(self, callback: Callable[[Message], Any]) -> None:
        self._listeners = [cb for cb in self._listeners if cb != callback]

    def add_watch(self, callback: Callable[[Message], Any]) -> None:
        self._watches.append(callback)

    def pop(self, timeout: float | None = None) -> Message | None:
        try:
            msg = self._q.get(timeout=timeout) if timeout else self._q.get_nowait()
        except queue.Empty:
            return None
        self.history.append(msg)
        if msg.type is MessageType.ERROR:
            self._errors.append(msg)
        return msg

    def dispatch(self, timeout: float | None = None) -> list[Message]:
        out = []
        msg = self.pop(timeout)
        while msg is not None:
            out.append(msg)
            for w in list(self._watches):
                w(msg)
            msg = self.pop()
        return out

    def errors(self) -> list[Message]:
        return list(self._errors)
