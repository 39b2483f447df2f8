"""NATS with nats-py. When a JetStream stream captures the subject, messages go through JetStream:
each is acknowledged by the stream (PubAck) and carries Nats-Msg-Id = the message id, so JetStream
itself drops a duplicate of an at-least-once retry. Otherwise core NATS: publish, then a flush
(PING/PONG) that returns once the server has read every message before it."""
from __future__ import annotations

import asyncio
import threading

import nats
import nats.errors as ne
from nats.js.errors import NotFoundError

from . import Adapter, BrokerError


async def _quiet(e: Exception) -> None:
    """Errors reach us as exceptions; without a callback nats-py also logs each with a traceback."""


class NatsAdapter(Adapter):
    def connect(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vidpipe:nats", daemon=True)
        self._thread.start()
        self._inbox: asyncio.Queue | None = None
        url = f"nats://{self.t.host}:{self.t.port}"
        kw = {"user": self.t.username, "password": self.t.password} if self.t.username else {}
        try:
            self._nc = self._run(nats.connect(url, allow_reconnect=False, connect_timeout=3, max_reconnect_attempts=1,
                                              reconnect_time_wait=0.1,
                                              error_cb=_quiet, **kw), 10)
        except (ne.AuthorizationError, ne.Error) as e:
            text = str(e) or type(e).__name__
            self._stop_loop()
            if "authorization" in text.lower():
                raise BrokerError(f"{self.t.describe()}: the server refused the login ({text}); check "
                                  "username/password") from None
            raise ConnectionError(f"{self.t.describe()}: {text}") from None
        except (OSError, asyncio.TimeoutError, TimeoutError) as e:
            self._stop_loop()
            raise ConnectionError(f"{self.t.describe()}: {e or type(e).__name__}") from None
        self._js = self._nc.jetstream()
        self._jet: dict[str, bool] = {}
        mode = self.t.options.get("jetstream", "auto")
        self._mode = mode if mode in ("auto", "0", "1") else "auto"

    def _run(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _uses_jetstream(self, subject: str) -> bool:
        if self._mode != "auto":
            return self._mode == "1"
        if subject not in self._jet:
            try:
                self._run(self._js.find_stream_name_by_subject(subject), 5)
                self._jet[subject] = True
            except (NotFoundError, ne.Error):
                self._jet[subject] = False
        return self._jet[subject]

    async def _send(self, messages):
        ok, core = [], []
        pending = []
        for k, (mid, topic, data) in enumerate(messages):
            subject = topic or self.t.topic
            if self._jet.get(subject):
                pending.append((k, self._js.publish(subject, data.encode(), headers={"Nats-Msg-Id": mid})))
            else:
                await self._nc.publish(subject, data.encode(), headers={"Nats-Msg-Id": mid})
                core.append(k)
        if core:
            await self._nc.flush(timeout=5)
            ok += core
        if pending:
            acks = await asyncio.gather(*(p for _, p in pending), return_exceptions=True)
            for (k, _), a in zip(pending, acks):
                if not isinstance(a, BaseException):
                    ok.append(k)
                elif isinstance(a, (ne.ConnectionClosedError, ne.NoServersError)):
                    raise ConnectionError(str(a) or type(a).__name__)
        return sorted(ok)

    def send(self, messages):
        for _, topic, _ in messages:
            self._uses_jetstream(topic or self.t.topic)
        try:
            return self._run(self._send(messages), 30)
        except (ne.ConnectionClosedError, ne.NoServersError, ne.StaleConnectionError, ne.OutboundBufferLimitError,
                ne.TimeoutError, ne.FlushTimeoutError, asyncio.TimeoutError, TimeoutError, OSError,
                ConnectionError) as e:
            raise ConnectionError(f"{self.t.describe()}: {e or type(e).__name__}") from None

    def subscribe(self, topics):
        async def sub():
            self._inbox = asyncio.Queue()
            inbox = self._inbox

            async def on_message(m):
                inbox.put_nowait((m.subject, m.data))
            for topic in topics:
                await self._nc.subscribe(topic, cb=on_message)
        self._run(sub(), 5)

    async def _receive(self, timeout):
        assert self._inbox is not None
        try:
            out = [await asyncio.wait_for(self._inbox.get(), timeout)]
        except asyncio.TimeoutError:
            return []
        while not self._inbox.empty():
            out.append(self._inbox.get_nowait())
        return out

    def receive(self, timeout):
        if self._nc.is_closed:
            raise ConnectionError(f"{self.t.describe()}: connection lost")
        return self._run(self._receive(timeout), timeout + 5)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def close(self) -> None:
        nc = getattr(self, "_nc", None)
        if nc is not None and not nc.is_closed:
            try:
                self._run(nc.close(), 5)
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        if getattr(self, "_loop", None) is not None and self._loop.is_running():
            self._stop_loop()
