"""Kafka with confluent-kafka (librdkafka): acks=all; a message counts as delivered when its
delivery report says so. DeepStream's cfg keys: proto-cfg ("key=value;..." librdkafka settings),
partition-key (a field of the payload, e.g. sensor.id, whose value keys the message: one sensor's
messages stay in order on one partition), consumer-group-id; plus username/password (SASL PLAIN,
or `sasl-mechanism`)."""
from __future__ import annotations

import json
import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from . import Adapter, BrokerError

log = logging.getLogger("vidpipe")

REFUSED = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED,
           KafkaError.CLUSTER_AUTHORIZATION_FAILED}


class _Quiet:
    """librdkafka logs every failed connection attempt; ours go to the debug log (the element
    reports a lost broker once, on the bus)."""

    def log(self, level, fmt, *args):
        log.debug("kafka: " + fmt, *args)


QUIET = _Quiet()


def _field(payload: str, path: str) -> str | None:
    try:
        v = json.loads(payload)
        for part in path.split("."):
            v = v[part]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return str(v)


class KafkaAdapter(Adapter):
    def _conf(self) -> dict:
        conf = {"bootstrap.servers": f"{self.t.host}:{self.t.port}", "socket.connection.setup.timeout.ms": 3000,
                "reconnect.backoff.max.ms": 2000, "logger": QUIET, "error_cb": self._errors.append}
        if self.t.username:
            conf.update({"security.protocol": self.t.options.get("security-protocol", "SASL_PLAINTEXT"),
                         "sasl.mechanism": self.t.options.get("sasl-mechanism", "PLAIN"),
                         "sasl.username": self.t.username, "sasl.password": self.t.password})
        for item in self.t.options.get("proto-cfg", "").split(";"):
            if "=" in item:
                k, v = item.split("=", 1)
                conf[k.strip()] = v.strip()
        return conf

    def _check(self, client) -> None:
        """librdkafka connects lazily: ask for the cluster's metadata to know now."""
        try:
            md = client.list_topics(timeout=5)
        except KafkaException as e:
            client.poll(0.2)                      # serves error_cb: a refused login is reported there
            err = next((x for x in self._errors if x.code() in REFUSED), e.args[0])
            if err.code() in REFUSED:
                raise BrokerError(f"{self.t.describe()}: the broker refused the login ({err.str()}); check "
                                  "username/password") from None
            raise ConnectionError(f"{self.t.describe()}: {err.str()}") from None
        if not md.brokers:
            raise ConnectionError(f"{self.t.describe()}: no broker answered")

    def connect(self) -> None:
        self._errors: list[KafkaError] = []     # librdkafka's own reports (a refused SASL login arrives here)
        conf = {"acks": "all", "message.timeout.ms": 10000, "linger.ms": 2, **self._conf()}
        try:
            self._p = Producer(conf)
        except KafkaException as e:
            raise BrokerError(f"{self.t.describe()}: {e.args[0].str()}") from None
        self._check(self._p)
        self._key = self.t.options.get("partition-key", "")
        self._c = None

    def send(self, messages):
        reports: dict[int, KafkaError | None] = {}

        def report(k):
            return lambda err, msg: reports.__setitem__(k, err)
        for k, (mid, topic, data) in enumerate(messages):
            key = _field(data, self._key) if self._key else None
            while True:
                try:
                    self._p.produce(topic or self.t.topic, data.encode(), key=key, headers=[("id", mid.encode())],
                                    on_delivery=report(k))
                    break
                except BufferError:              # librdkafka's own queue is full: let it drain
                    self._p.poll(0.1)
        deadline = time.monotonic() + 15
        while len(reports) < len(messages) and time.monotonic() < deadline:
            self._p.poll(0.05)
        ok = [k for k, err in sorted(reports.items()) if err is None]
        if len(ok) < len(messages):
            errs = [e for e in reports.values() if e is not None]
            if any(e.code() in REFUSED for e in errs):
                raise BrokerError(f"{self.t.describe()}: {errs[0].str()}")
            if errs or len(reports) < len(messages):
                raise ConnectionError(f"{self.t.describe()}: {errs[0].str() if errs else 'no delivery report'}")
        return ok

    def subscribe(self, topics):
        """Explicit partition assignment from the end of each topic (no consumer-group rebalance)."""
        conf = {"group.id": self.t.options.get("consumer-group-id", "vidpipe-commands"), "enable.auto.commit": False,
                **self._conf()}
        self._c = Consumer(conf)
        parts = []
        md = self._c.list_topics(timeout=5)
        for topic in topics:
            if topic not in md.topics or md.topics[topic].error is not None:
                raise ConnectionError(f"{self.t.describe()}: topic '{topic}' does not exist (yet)")
            for pid in md.topics[topic].partitions:
                _, high = self._c.get_watermark_offsets(TopicPartition(topic, pid), timeout=5)
                parts.append(TopicPartition(topic, pid, high))
        self._c.assign(parts)

    def receive(self, timeout):
        assert self._c is not None
        out = []
        first = self._c.poll(timeout)            # at once when one is there; consume() waits for a full batch
        if first is None:
            return out
        for m in [first, *self._c.consume(num_messages=100, timeout=0)]:
            if m.error() is None:
                out.append((m.topic(), m.value() or b""))
            elif m.error().code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                raise ConnectionError(f"{self.t.describe()}: {m.error().str()}")
        return out

    def close(self) -> None:
        if getattr(self, "_c", None) is not None:
            self._c.close()
            self._c = None
        if getattr(self, "_p", None) is not None:
            self._p.flush(1)
            self._p = None
