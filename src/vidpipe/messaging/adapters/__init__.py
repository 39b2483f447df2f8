"""Broker adapters: connect, send a list of messages and say which the broker acknowledged;
subscribe and receive (the cloud-to-device direction).

Where to send is a URL (mqtt://user:pass@host:1883/topic, redis://host:6379/stream,
kafka://host:9092/topic, amqp://user:pass@host:5672/routing.key, nats://host:4222/subject,
file:///path; `?key=value` adds config keys) or DeepStream's proto-lib + conn-str
("host;port[;topic]") + config file (the adapters' keys).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlparse

from ...config.ini import read_ini
from ...errors import ConfigError, VidpipeError

PROTO_LIBS = {"libnvds_kafka_proto.so": "kafka", "libnvds_mqtt_proto.so": "mqtt", "libnvds_redis_proto.so": "redis",
              "libnvds_amqp_proto.so": "amqp", "libnvds_azure_proto.so": None, "libnvds_azure_edge_proto.so": None}
DEFAULT_PORTS = {"mqtt": 1883, "redis": 6379, "kafka": 9092, "amqp": 5672, "nats": 4222}
# kind -> (module in this package, class, the pip extra that brings its client library)
ADAPTERS = {"file": ("file_lines", "FileAdapter", ""), "mqtt": ("mqtt", "MqttAdapter", "mqtt"),
            "redis": ("redis_streams", "RedisAdapter", "redis"), "kafka": ("kafka", "KafkaAdapter", "kafka"),
            "amqp": ("amqp", "AmqpAdapter", "amqp"), "nats": ("nats_subjects", "NatsAdapter", "nats")}


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
                 config: str = "", need_topic: bool = True) -> Target:
    """A URL, or DeepStream's proto-lib / conn-str / topic / config."""
    if url:
        u = urlparse(url)
        kind = u.scheme.lower()
        if kind == "file":
            t = Target("file", path=unquote(u.path) or u.netloc, topic=topic)
        elif kind not in DEFAULT_PORTS:
            raise ConfigError(f"'{url}': unknown broker scheme '{u.scheme}' (use mqtt://, redis://, kafka://, amqp://, "
                              "nats:// or file://)")
        else:
            try:
                port = u.port or DEFAULT_PORTS[kind]
            except ValueError:
                raise ConfigError(f"'{url}': the port is not a number") from None
            t = Target(kind, u.hostname or "127.0.0.1", port, topic or unquote(u.path.lstrip("/")),
                       username=unquote(u.username or ""), password=unquote(u.password or ""))
        t.options.update({k.lower(): v for k, v in parse_qsl(u.query)})
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
        third = parts[2] if len(parts) > 2 else ""
        if kind == "amqp":        # DeepStream's AMQP conn-str is host;port;username (password in the config)
            t = Target(kind, parts[0], int(parts[1]), topic, username=third)
        else:
            t = Target(kind, parts[0], int(parts[1]), topic or third)
    if config:
        for e in read_ini(config):
            t.options[e.key] = e.value.strip().strip('"')
    t.username = t.username or t.options.get("username", "")
    t.password = t.password or t.options.get("password", "")
    if not t.topic:
        t.topic = t.options.get("topic", "")
    if need_topic and t.kind in ("mqtt", "redis", "kafka", "nats") and not t.topic:
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
        """(id, topic, data) each -> indexes of the messages the broker acknowledged.
        Raises ConnectionError when the connection is lost (the messages are retried)."""
        raise NotImplementedError

    def idle(self) -> None:
        """Called when there is nothing to send (keep-alives for clients that need them)."""

    def subscribe(self, topics: list[str]) -> None:
        """After connect(): start receiving `topics` (messages arriving from now on)."""
        raise NotImplementedError

    def receive(self, timeout: float) -> list[tuple[str, bytes]]:
        """(topic, payload) of the messages received, waiting up to `timeout` for the first.
        Raises ConnectionError when the connection is lost."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def make_adapter(t: Target) -> Adapter:
    module, cls, extra = ADAPTERS[t.kind]
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ImportError as e:
        raise BrokerError(f"the {t.kind} adapter needs {e.name}: pip install 'vidpipe[{extra}]'") from None
    return getattr(mod, cls)(t)
