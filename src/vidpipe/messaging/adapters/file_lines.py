"""JSON lines on disk: each message is {"id", "topic", "payload"} (payload parsed back when it is
JSON). Receiving tails a file that someone appends commands to."""
from __future__ import annotations

import json
import os
import time
from typing import Any

from . import Adapter, BrokerError


class FileAdapter(Adapter):
    def connect(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.t.path))
        if not os.path.isdir(folder):
            raise BrokerError(f"file://{self.t.path}: folder {folder} does not exist")
        self._fh = None
        self._read_at = 0

    def send(self, messages):
        if self._fh is None:
            self._fh = open(self.t.path, "a", encoding="utf-8")
        for mid, topic, data in messages:
            try:
                payload: Any = json.loads(data)
            except ValueError:
                payload = data
            self._fh.write(json.dumps({"id": mid, "topic": topic, "payload": payload}, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return list(range(len(messages)))

    def subscribe(self, topics):
        """Lines appended from now on; a line is either a JSON command or {"topic", "payload"}."""
        self._topics = set(topics)
        self._read_at = os.path.getsize(self.t.path) if os.path.exists(self.t.path) else 0

    def receive(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            out = self._read_new()
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(0.05)

    def _read_new(self) -> list[tuple[str, bytes]]:
        try:
            with open(self.t.path, "rb") as fh:
                fh.seek(self._read_at)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1          # whole lines only
        self._read_at += end
        out = []
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                out.append(("", line))
                continue
            if isinstance(row, dict) and "payload" in row and "topic" in row:
                if not self._topics or row["topic"] in self._topics:
                    p = row["payload"]
                    out.append((row["topic"], (p if isinstance(p, str) else json.dumps(p)).encode()))
            else:
                out.append(("", line))
        return out

    def close(self) -> None:
        if getattr(self, "_fh", None) is not None:
            self._fh.close()
            self._fh = None
