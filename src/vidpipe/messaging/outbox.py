"""A durable outbox: messages wait on disk (SQLite, WAL) until the broker has acknowledged them.

A message enters with a stable id and leaves only on `ack`; what is queued when the process dies
is sent by the next process that opens the same file. Bounded by a message count and an age:
what the bound drops is counted (and logged by the caller), never silent.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass


@dataclass
class Queued:
    seq: int
    id: str
    topic: str
    data: str
    created: float
    attempts: int


class Outbox:
    def __init__(self, path: str, *, max_messages: int = 1_000_000, max_age_s: float = 0.0,
                 policy: str = "drop-oldest"):
        if policy not in ("drop-oldest", "drop-newest"):
            raise ValueError(f"outbox policy must be drop-oldest or drop-newest, got {policy!r}")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.path = path
        self.max_messages, self.max_age_s, self.policy = max_messages, max_age_s, policy
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: survives a process crash (not a power cut)
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, "
                         "topic TEXT, data TEXT, created REAL, attempts INTEGER DEFAULT 0)")
        self.dropped = 0
        self._count = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def put(self, messages: list[tuple[str, str, str]]) -> int:
        """(id, topic, data) each; a message whose id is queued already is not added twice.
        Returns how many the bounds dropped."""
        now = time.time()
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            cur.executemany("INSERT OR IGNORE INTO outbox (id, topic, data, created) VALUES (?, ?, ?, ?)",
                            [(i, t, d, now) for i, t, d in messages])
            self._count += max(cur.rowcount, 0)
            dropped = 0
            if self.max_age_s > 0:
                dropped += cur.execute("DELETE FROM outbox WHERE created < ?", (now - self.max_age_s,)).rowcount
            over = self._count - dropped - self.max_messages
            if over > 0:
                order = "ASC" if self.policy == "drop-oldest" else "DESC"
                dropped += cur.execute(f"DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq {order} "
                                       f"LIMIT ?)", (over,)).rowcount
            cur.execute("COMMIT")
            self._count -= dropped
            self.dropped += dropped
            return dropped

    def peek(self, n: int) -> list[Queued]:
        with self._lock:
            rows = self._db.execute("SELECT seq, id, topic, data, created, attempts FROM outbox ORDER BY seq LIMIT ?",
                                    (n,)).fetchall()
        return [Queued(*r) for r in rows]

    def ack(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:      # one transaction (one WAL commit) for the lot
            cur = self._db.cursor()
            cur.execute("BEGIN")
            cur.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._count -= max(cur.rowcount, 0)
            cur.execute("COMMIT")

    def tried(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            cur.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs])
            cur.execute("COMMIT")

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
