"""Redis Streams: XADD <topic> * id <id> payload <data>; a message is acknowledged by the entry id
Redis returns. Receiving reads the stream from the moment of subscribing (XREAD BLOCK)."""
from __future__ import annotations

import redis

from . import Adapter, BrokerError


class RedisAdapter(Adapter):
    def connect(self) -> None:
        self._r = redis.Redis(host=self.t.host, port=self.t.port, username=self.t.username or None,
                              password=self.t.password or None, socket_timeout=5, socket_connect_timeout=3)
        try:
            self._r.ping()
        except redis.AuthenticationError as e:
            raise BrokerError(f"{self.t.describe()}: the broker refused the login ({e}); check username/password") \
                from None
        except redis.ResponseError as e:
            raise BrokerError(f"{self.t.describe()}: {e}") from None
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise ConnectionError(f"{self.t.describe()}: {e}") from None
        self._maxlen = int(self.t.options.get("streamsize", "0")) or None

    def send(self, messages):
        try:
            pipe = self._r.pipeline(transaction=False)
            for mid, topic, data in messages:
                pipe.xadd(topic or self.t.topic, {"id": mid, "payload": data}, maxlen=self._maxlen, approximate=True)
            ids = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise ConnectionError(f"{self.t.describe()}: {e}") from None
        return [k for k, i in enumerate(ids) if i]

    def subscribe(self, topics):
        if not hasattr(self, "_last"):           # a reconnection goes on where it was
            self._last = {}
        for topic in topics:
            if topic not in self._last:
                entries = self._r.xrevrange(topic, count=1)
                self._last[topic] = entries[0][0] if entries else b"0-0"

    def receive(self, timeout):
        try:
            got = self._r.xread(self._last, block=max(1, int(timeout * 1000)))
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise ConnectionError(f"{self.t.describe()}: {e}") from None
        out = []
        for stream, entries in got or []:
            topic = stream.decode() if isinstance(stream, bytes) else stream
            for entry_id, fields in entries:
                self._last[topic] = entry_id
                out.append((topic, fields.get(b"payload") or fields.get(b"data") or b""))
        return out

    def close(self) -> None:
        r = getattr(self, "_r", None)
        if r is not None:
            r.close()
