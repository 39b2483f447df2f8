"""msgbroker: payloads -> a message broker, through a durable outbox (nvmsgbroker's role).

The element only writes the batch's payloads to the outbox (SQLite on disk) and passes the batch
on: the pipeline never waits for the network. A sender thread connects (starting while the broker
is down is fine: a warning, then retries with backoff), sends what the outbox holds, and deletes a
message only when the broker has acknowledged it. At stop it sends for up to `flush-timeout`
seconds; what is left stays in the outbox file and goes out at the next start.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ..core.element import Element
from ..core.meta import Batch
from ..core.props import Prop
from ..core.registry import register
from ..errors import ConfigError
from .adapters import BrokerError, make_adapter, parse_target
from .outbox import Outbox

log = logging.getLogger("vidpipe")


@register("msgbroker", aliases={"nvmsgbroker": {}})
class MsgBroker(Element):
    """Sends msgconv's payloads to Kafka/MQTT/Redis/AMQP/NATS or a JSON-lines file; nothing is lost
    when the broker goes away (see docs/messaging.md)."""

    description = "payloads -> message broker, with a durable outbox"
    src_optional = True
    url = Prop(str, "", "where to send: kafka://host:9092/topic, mqtt://[user:pass@]host:1883/topic, "
               "redis://host:6379/stream, amqp://user:pass@host:5672/routing.key, nats://host:4222/subject, "
               "file:///path.jsonl (?key=value adds config keys)")
    proto_lib = Prop(str, "", "DeepStream's adapter library name (libnvds_mqtt_proto.so ...), with conn-str")
    conn_str = Prop(str, "", "DeepStream's 'host;port[;topic]'")
    config = Prop(str, "", "adapter config file (username, password, qos, protocol, client-id, streamsize, "
                  "exchange, proto-cfg, partition-key, jetstream ...)")
    topic = Prop(str, "", "topic / stream / routing key (overrides the URL's and conn-str's)")
    comp_id = Prop(int, 0, "accepted for DeepStream compatibility", minimum=0)
    outbox = Prop(str, "", "outbox file (default: vidpipe-outbox-<element name>.db in the working folder)")
    outbox_max = Prop(int, 1_000_000, "most messages the outbox keeps", minimum=1)
    outbox_max_age = Prop(float, 0.0, "drop messages older than this many seconds (0: never)", minimum=0.0)
    outbox_policy = Prop(str, "drop-oldest", "what a full outbox drops", choices=["drop-oldest", "drop-newest"])
    batch = Prop(int, 100, "messages per send", minimum=1)
    retry_max = Prop(float, 10.0, "longest wait between reconnection attempts (seconds)", minimum=0.1)
    flush_timeout = Prop(float, 5.0, "seconds to keep sending at stop before leaving the rest for the next run",
                         minimum=0.0)

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self.box: Outbox | None = None
        self.counters = {"published": 0, "acknowledged": 0, "queued": 0, "retried": 0, "dropped": 0,
                         "reconnects": 0}
        self._wake = threading.Event()
        self._stop_sending = threading.Event()
        self._sender: threading.Thread | None = None
        self.connected = False

    def start(self) -> None:
        if not (self.url or self.proto_lib):
            raise ConfigError(f"{self.name}: set url= (mqtt://host:port/topic ...) or proto-lib= with conn-str=")
        self.target = parse_target(self.url, proto_lib=self.proto_lib, conn_str=self.conn_str, topic=self.topic,
                                   config=self.config)
        self.adapter = make_adapter(self.target)
        path = self.outbox or os.path.join(os.getcwd(), f"vidpipe-outbox-{self.name}.db")
        self.box = Outbox(path, max_messages=self.outbox_max, max_age_s=self.outbox_max_age,
                          policy=self.outbox_policy)
        left = len(self.box)
        if left:
            self.post("info", f"{self.name}: {left} message(s) from an earlier run are queued in {path}; sending them")
        self.counters["queued"] = left
        self._sender = threading.Thread(target=self._send_loop, name=f"vidpipe:{self.name}:send", daemon=True)
        self._sender.start()

    def process(self, batch: Batch) -> Batch:
        payloads = batch.user_meta.get("payloads") or []
        if payloads and self.box is not None:
            dropped = self.box.put([(p.id, p.topic or self.target.topic, p.data) for p in payloads])
            if dropped:
                self.counters["dropped"] += dropped
                log.warning("%s: outbox full (%s): %d message(s) dropped", self.name, self.outbox_policy, dropped)
            self.counters["queued"] = len(self.box)
            self._wake.set()
        return batch

    # -- the sender thread -------------------------------------------------------------------
    def _connect(self) -> bool:
        wait, warned = 0.2, False
        while not self._stop_sending.is_set():
            try:
                self.adapter.connect()
            except BrokerError as e:  # refused (bad login, no such folder): not worth retrying fast
                self.post("error", f"{self.name}: {e}")
                self._stop_sending.wait(self.retry_max)
                continue
            except (ConnectionError, OSError) as e:
                if not warned:
                    self.post("warning", f"{self.name}: cannot reach {self.target.describe()} ({e}); messages wait in "
                                         f"the outbox, retrying")
                    warned = True
                self._stop_sending.wait(wait)
                wait = min(wait * 2, self.retry_max)
                continue
            if warned:
                self.post("info", f"{self.name}: connected to {self.target.describe()}")
            self.connected = True
            return True
        return False

    def _send_loop(self) -> None:
        assert self.box is not None
        while not self._stop_sending.is_set():
            if not self.connected and not self._connect():
                return
            msgs = self.box.peek(self.batch)
            if not msgs:
                try:
                    self.adapter.idle()
                except (ConnectionError, OSError) as e:
                    self._lost(e, [])
                    continue
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            self._send(msgs)

    def _send(self, msgs) -> bool:
        assert self.box is not None
        try:
            ok = self.adapter.send([(m.id, m.topic, m.data) for m in msgs])
        except (ConnectionError, OSError) as e:
            self._lost(e, msgs)
            return False
        except BrokerError as e:   # refused after connecting (ACL, missing exchange): kept, retried slowly
            self.post("error", f"{self.name}: {e}")
            self._lost(e, msgs)
            self._stop_sending.wait(self.retry_max)
            return False
        acked = [msgs[k].seq for k in ok]
        self.box.ack(acked)
        self.counters["published"] += len(msgs)
        self.counters["acknowledged"] += len(acked)
        if len(acked) < len(msgs):
            self.counters["retried"] += len(msgs) - len(acked)
        self.counters["queued"] = len(self.box)
        return True

    def _lost(self, e: Exception, msgs) -> None:
        assert self.box is not None
        log.info("%s: %s; reconnecting", self.name, e)
        self.connected = False
        self.counters["reconnects"] += 1
        if msgs:
            self.box.tried([m.seq for m in msgs])
            self.counters["retried"] += len(msgs)
        try:
            self.adapter.close()
        except Exception as e:  # noqa: BLE001 - a half-dead client: start afresh
            log.debug("%s: closing the old connection: %s", self.name, e)

    def stop(self) -> None:
        """Sends for up to flush-timeout seconds, then leaves the rest in the outbox."""
        if self.box is None:
            return
        deadline = time.monotonic() + self.flush_timeout
        while len(self.box) and time.monotonic() < deadline and self._sender is not None and self._sender.is_alive():
            time.sleep(0.05)
            self._wake.set()
        self._stop_sending.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout=10)
        left = len(self.box)
        self.counters["queued"] = left
        if left:
            log.warning("%s: %d message(s) not yet acknowledged stay in %s for the next run", self.name, left,
                        self.box.path)
        try:
            self.adapter.close()
        except Exception as e:  # noqa: BLE001 - closing a dead connection
            log.debug("%s: closing the connection: %s", self.name, e)
        self.box.close()
        self.box = None
