"""AMQP 0-9-1 (RabbitMQ) with pika: persistent messages published to an exchange (`exchange`,
default amq.topic) with the topic as routing key. Acknowledgement (`amqp-ack`): `tx` (default)
publishes each batch in a transaction, and the broker's Commit-Ok acknowledges all of it in one
round trip; `confirm` waits for a publisher confirm per message (pika's blocking channel confirms
one at a time: about 6x slower here). DeepStream's cfg keys: username, password, exchange, topic,
amqp-heartbeat, amqp-framesize."""
from __future__ import annotations

import pika
import pika.exceptions as px

from . import Adapter, BrokerError

LOST = (px.AMQPConnectionError, px.ConnectionClosed, px.StreamLostError, px.ChannelClosed, px.ChannelWrongStateError,
        ConnectionError, OSError)


class AmqpAdapter(Adapter):
    def connect(self) -> None:
        o = self.t.options
        params = pika.ConnectionParameters(
            self.t.host, self.t.port, virtual_host=o.get("vhost", "/"),
            credentials=pika.PlainCredentials(self.t.username or "guest", self.t.password or "guest"),
            heartbeat=int(o.get("amqp-heartbeat", "30")), frame_max=int(o.get("amqp-framesize", "131072")),
            connection_attempts=1, socket_timeout=3, blocked_connection_timeout=10)
        self._exchange = o.get("exchange", "amq.topic")
        try:
            self._conn = pika.BlockingConnection(params)
        except (px.ProbableAuthenticationError, px.AuthenticationError, px.ProbableAccessDeniedError) as e:
            raise BrokerError(f"{self.t.describe()}: the broker refused the login ({e}); check username/password "
                              "and the user's permissions on the vhost") from None
        except LOST as e:
            raise ConnectionError(f"{self.t.describe()}: {e!r}") from None
        self._ch = self._conn.channel()
        self._tx = o.get("amqp-ack", "tx") != "confirm"
        if self._tx:
            self._ch.tx_select()
        else:
            self._ch.confirm_delivery()
        self._got: list[tuple[str, bytes]] = []

    def send(self, messages):
        ok = []
        try:
            for k, (mid, topic, data) in enumerate(messages):
                try:
                    self._ch.basic_publish(self._exchange, topic or self.t.topic, data.encode(),
                                           pika.BasicProperties(delivery_mode=2, message_id=mid,
                                                                content_type="application/json"))
                    ok.append(k)
                except px.NackError:
                    continue
            if self._tx:
                self._ch.tx_commit()             # the broker took every message of the batch
        except px.ChannelClosedByBroker as e:
            if e.reply_code == 404:
                raise BrokerError(f"{self.t.describe()}: exchange '{self._exchange}' does not exist") from None
            raise ConnectionError(f"{self.t.describe()}: {e!r}") from None
        except LOST as e:
            raise ConnectionError(f"{self.t.describe()}: {e!r}") from None
        return ok

    def idle(self) -> None:
        try:
            self._conn.process_data_events(0)    # heartbeats
        except LOST as e:
            raise ConnectionError(f"{self.t.describe()}: {e!r}") from None

    def subscribe(self, topics):
        """An exclusive queue bound to the exchange with each topic as routing key."""
        q = self._ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for topic in topics:
            self._ch.queue_bind(q, self._exchange, routing_key=topic)
        self._ch.basic_consume(q, lambda ch, m, props, body: self._got.append((m.routing_key, body)), auto_ack=True)

    def receive(self, timeout):
        try:
            self._conn.process_data_events(time_limit=timeout)
        except LOST as e:
            raise ConnectionError(f"{self.t.describe()}: {e!r}") from None
        out, self._got = self._got, []
        return out

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except LOST:
                pass
