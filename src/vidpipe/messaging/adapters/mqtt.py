"""MQTT with paho-mqtt: 3.1.1, or 5 with the config key `protocol=5`. Sending uses QoS 1 (`qos`):
a message counts as delivered when the broker's PUBACK arrives."""
from __future__ import annotations

import queue
import socket
import threading

import paho.mqtt.client as mqtt

from . import Adapter, BrokerError


class MqttAdapter(Adapter):
    def connect(self) -> None:
        v5 = self.t.options.get("protocol", "") in ("5", "mqttv5")
        self._c = c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.t.options.get("client-id", ""),
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        if self.t.username:
            c.username_pw_set(self.t.username, self.t.password or None)
        self._qos = int(self.t.options.get("qos", "1"))
        c.max_inflight_messages_set(int(self.t.options.get("max-inflight", "1000")))   # paho's default 20 caps QoS 1
        self._inbox: queue.Queue = queue.Queue()
        self._topics: list[str] = []
        done = threading.Event()
        result: list = []

        def on_connect(client, userdata, flags, reason, properties=None):
            result.append(reason)
            done.set()
        c.on_connect = on_connect
        c.on_message = lambda client, userdata, m: self._inbox.put((m.topic, m.payload))
        try:
            c.connect(self.t.host, self.t.port, keepalive=int(self.t.options.get("keepalive", "30")))
        except OSError as e:
            raise ConnectionError(f"{self.t.describe()}: {e.strerror or e}") from None
        sock = c.socket()
        if sock is not None:   # publishes go out at once (the broker side needs set_tcp_nodelay: docs)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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

    def subscribe(self, topics):
        """Subscribes and waits for the broker's SUBACK: a message published once this returns
        is received (before it, the broker may not have the subscription yet). A failure code in
        the SUBACK is a BrokerError (mosquitto 2.0.11 grants a topic its ACL denies and only
        withholds the messages, so the tests cannot show that path)."""
        acked: dict[int, list] = {}
        cond = threading.Condition()

        def on_subscribe(client, userdata, mid, reason_codes, properties=None):
            with cond:
                acked[mid] = list(reason_codes)
                cond.notify_all()
        self._c.on_subscribe = on_subscribe
        mids = []
        for topic in topics:
            rc, mid = self._c.subscribe(topic, qos=self._qos)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"{self.t.describe()}: subscribing to {topic} failed ({mqtt.error_string(rc)})")
            mids.append((topic, mid))
        with cond:
            if not cond.wait_for(lambda: all(m in acked for _, m in mids), timeout=5.0):
                raise ConnectionError(f"{self.t.describe()}: no SUBACK within 5 s")
        for topic, mid in mids:
            refused = [r for r in acked[mid] if getattr(r, "is_failure", False)]
            if refused:
                raise BrokerError(f"{self.t.describe()}: the broker refused the subscription to {topic} "
                                  f"({refused[0]}); check the broker's ACL")

    def receive(self, timeout):
        try:
            out = [self._inbox.get(timeout=timeout)]
        except queue.Empty:
            if not self._c.is_connected():
                raise ConnectionError(f"{self.t.describe()}: connection lost") from None
            return []
        while not self._inbox.empty():
            out.append(self._inbox.get_nowait())
        return out

    def close(self) -> None:
        c = getattr(self, "_c", None)
        if c is not None:
            c.disconnect()
            c.loop_stop()
