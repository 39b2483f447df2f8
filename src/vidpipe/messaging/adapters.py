"""Broker adapters: connect, send a list of messages and say which the broker acknowledged.

Where to send is a URL (mqtt://user:pass@host:1883/topic, redis://host:6379/stream, file:///path)
or DeepStream's proto-lib + conn-str ("host;port[;topic]") + config file (the adapters' keys).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from ..config.ini import read_ini
from ..errors import ConfigError, VidpipeError

PROTO_LIBS = {"libnvds_kafka_proto.so": "kafka", "libnvds_mqtt_proto.so": "mqtt", "libnvds_redis_proto.so": "redis",
              "libnvds_amqp_proto.so": "amqp", "libnvds_azure_proto.so": None, "libnvds_azure_edge_proto.so": None}
DEFAULT_PORTS = {"mqtt": 1883, "redis": 6379, "kafka": 9092, "amqp": 5672, "nats": 4222}


class BrokerError(VidpipeError):
    """A broker refused us (bad login, unknown topic) or cannot be reached."""


@dataclass
class Target:
    kind: str                     # mqtt | redis | file | kafka | amqp | nats
    host: str = "127.0.0.1"
    port: int = 0
    topic: str = ""
    path: str = ""                # file adapter
    username: str = ""
    password: str = ""
    options: dict[str, str] = field(default_factory=dict)   # the config file's keys

    def describe(self) -> str:
        return f"{self.kind}://{self.host}:{self.port}/{self.topic}" if self.kind != "file" else f"file://{self.path}"


def parse_target(url: str = "", *, proto_lib: str = "", conn_str: str = "", topic: str = "",
                 config: str = "") -> Target:
    """A URL, or DeepStream's proto-lib / conn-str / topic / config."""
    if url:
        u = urlparse(url)
        kind = u.scheme.lower()
        if kind == "file":
            return Target("file", path=unquote(u.path) or u.netloc, topic=topic)
        if kind not in DEFAULT_PORTS:
            raise ConfigError(f"'{url}': unknown broker scheme '{u.scheme}' (use mqtt://, redis://, kafka://, amqp://, "
                              "nats:// or file://)")
        t = Target(kind, u.hostname or "127.0.0.1", u.port or DEFAULT_PORTS[kind], topic or unquote(u.path.lstrip("/")),
                   username=unquote(u.username or ""), password=unquote(u.password or ""))
    else:
        lib = os.path.basename(proto_lib)
        if lib not in PROTO_LIBS:
            raise ConfigError(f"proto-lib '{proto_lib}': unknown adapter library (known: {', '.join(PROTO_LIBS)}); "
                              "or give a URL such as mqtt://host:1883/topic")
        kind = PROTO_LIBS[lib]
        if kind is None:
            raise ConfigError(f"proto-lib '{proto_lib}': the Azure adapters have no vidpipe counterpart; use mqtt:// "
                              "to an Azure IoT hub's MQTT endpoint")
        parts = [p.strip() for p in conn_str.split(";")]
        if len(parts) < 2 or not parts[0] or not parts[1].isdigit():
            raise ConfigError(f"conn-str '{conn_str}': expected 'host;port' or 'host;port;topic'")
        t = Target(kind, parts[0], int(parts[1]), topic or (parts[2] if len(parts) > 2 else ""))
    if config:
        for e in read_ini(config):
            t.options[e.key] = e.value
        t.username = t.username or t.options.get("username", "")
        t.password = t.password or t.options.get("password", "")
    if t.kind in ("mqtt", "redis", "kafka", "amqp", "nats") and not t.topic and t.kind != "amqp":
        raise ConfigError(f"{t.describe()}: no topic; give topic= or put it in the URL / conn-str")
    return t


class Adapter:
    """connect() raises BrokerError when the broker refuses (bad login: not retried) or
    ConnectionError when it cannot be reached (retried with backoff)."""

    def __init__(self, target: Target):
        self.t = target

    def connect(self) -> None:
        raise NotImplementedError

    def send(self, messages: list[tuple[str, str, str]]) -> list[int]:
        """(id, topic, data) each -> indexes of the messages the broker acknowledged."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileAdapter(Adapter):
    """JSON lines: {"id", "topic", "payload"} (payload parsed back when it is JSON)."""

    def connect(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.t.path))
        if not os.path.isdir(folder):
            raise BrokerError(f"file://{self.t.path}: folder {folder} does not exist")
        self._fh = open(self.t.path, "a", encoding="utf-8")

    def send(self, messages):
        for mid, topic, data in messages:
            try:
                payload: Any = json.loads(data)
            except ValueError:
                payload = data
            self._fh.write(json.dumps({"id": mid, "topic": topic, "payload": payload}, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return list(range(len(messages)))

    def close(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()


class MqttAdapter(Adapter):
    """paho-mqtt, MQTT 3.1.1 (or 5 with the config key `protocol=5`), QoS 1: a message counts as
    delivered when the broker's PUBACK arrives."""

    def connect(self) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise BrokerError("the MQTT adapter needs paho-mqtt: pip install 'vidpipe[mqtt]'") from None
        v5 = self.t.options.get("protocol", "") in ("5", "mqttv5")
        self._c = c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.t.options.get("client-id", ""),
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        if self.t.username:
            c.username_pw_set(self.t.username, self.t.password or None)
        self._qos = int(self.t.options.get("qos", "1"))
        done = threading.Event()
        result: list = []

        def on_connect(client, userdata, flags, reason, properties=None):
            result.append(reason)
            done.set()
        c.on_connect = on_connect
        try:
            c.connect(self.t.host, self.t.port, keepalive=int(self.t.options.get("keepalive", "30")))
        except OSError as e:
            raise ConnectionError(f"{self.t.describe()}: {e.strerror or e}") from None
        c.loop_start()
        if not done.wait(5.0):
            c.loop_stop()
            raise ConnectionError(f"{self.t.describe()}: no CONNACK within 5 s")
        reason = result[0]
        if getattr(reason, "is_failure", False):
            c.loop_stop()
            raise BrokerError(f"{self.t.describe()}: the broker refused the connection ({reason}); check "
                              "username/password and the broker's ACL")

    def send(self, messages):
        infos = [(k, self._c.publish(topic or self.t.topic, data, qos=self._qos)) for k, (_, topic, data) in
                 enumerate(messages)]
        ok = []
        for k, info in infos:
            try:
                info.wait_for_publish(timeout=5.0)
            except (RuntimeError, ValueError):
                continue
            if info.is_published():
                ok.append(k)
        if len(ok) < len(messages) and not self._c.is_connected():
            raise ConnectionError(f"{self.t.describe()}: connection lost")
        return ok

    def close(self) -> None:
        c = getattr(self, "_c", None)
        if c is not None:
            c.disconnect()
            c.loop_stop()


class RedisAdapter(Adapter):
    """Redis Streams: XADD <topic> * id <id> payload <data>; acknowledged by the returned entry id."""

    def connect(self) -> None:
        try:
            import redis
        except ImportError:
            raise BrokerError("the Redis adapter needs redis: pip install 'vidpipe[redis]'") from None
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
        import redis
        try:
            pipe = self._r.pipeline(transaction=False)
            for mid, topic, data in messages:
                pipe.xadd(topic or self.t.topic, {"id": mid, "payload": data}, maxlen=self._maxlen, approximate=True)
            ids = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise ConnectionError(f"{self.t.describe()}: {e}") from None
        return [k for k, i in enumerate(ids) if i]

    def close(self) -> None:
        r = getattr(self, "_r", None)
        if r is not None:
            r.close()


ADAPTERS = {"file": FileAdapter, "mqtt": MqttAdapter, "redis": RedisAdapter}


def make_adapter(t: Target) -> Adapter:
    cls = ADAPTERS.get(t.kind)
    if cls is None:
        raise ConfigError(f"{t.describe()}: the {t.kind} adapter is not built yet (available: "
                          f"{', '.join(sorted(ADAPTERS))})")
    return cls(t)
