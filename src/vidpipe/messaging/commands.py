"""Cloud-to-device: commands arriving on a broker topic, run against the pipeline.

    listener = CommandListener(pipeline, "mqtt://broker:1883/commands")
    pipeline.start(); listener.start()

A thread subscribes (reconnecting with backoff, like msgbroker's sender) and hands each message
to `handlers` (callables taking a Command) and to the built-in ones:

  smart record (DeepStream's format):
    {"command": "start-recording", "start": "2026-11-26T10:00:00.000Z", "end": "...Z",
     "sensor": {"id": "CAM_0"}}               start = now - start_before; end absent: default duration
    {"command": "stop-recording", "sensor": {"id": "CAM_0"}}
  streams (DeepStream's REST body for nvmultiurisrcbin, or the short form):
    {"key": "sensor", "value": {"camera_id": "CAM_4", "camera_url": "rtsp://...", "change": "camera_add"}}
    {"key": "sensor", "value": {"camera_id": "CAM_4", "change": "camera_remove"}}
    {"command": "add-stream", "uri": "rtsp://...", "sensor": {"id": "CAM_4"}}
    {"command": "remove-stream", "sensor": {"id": "CAM_4"}}

A sensor id names a stream by its sensor id (given when it was added, or `pipeline.streams.sensors`),
its source id, or its element name. Every command posts a "command" element message on the bus
(ok, or the error); a malformed message is counted and logged, never fatal.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from ..errors import VidpipeError
from .adapters import BrokerError, make_adapter, parse_target

log = logging.getLogger("vidpipe")


@dataclass
class Command:
    name: str                     # start-recording | stop-recording | add-stream | remove-stream | other
    sensor: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    topic: str = ""


def parse_command(data: bytes | str) -> Command:
    """A message body -> Command. Raises ValueError for what is not a command."""
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("a command is a JSON object")
    if body.get("key") == "sensor" and isinstance(body.get("value"), dict):      # DeepStream's REST/IoT body
        v = body["value"]
        change = str(v.get("change", ""))
        name = {"camera_add": "add-stream", "camera_streaming": "add-stream", "camera_remove": "remove-stream"}.get(
            change)
        if name is None:
            raise ValueError(f"unknown change '{change}' (camera_add, camera_remove)")
        return Command(name, str(v.get("camera_id", "")), {"uri": v.get("camera_url", ""), **v})
    name = body.get("command")
    if not isinstance(name, str) or not name:
        raise ValueError("no 'command' (or DeepStream's key/value) in the message")
    sensor = body.get("sensor", {})
    sensor_id = str(sensor.get("id", "")) if isinstance(sensor, dict) else str(sensor)
    return Command(name, sensor_id, body)


def _time(value: Any, what: str) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"'{what}': {value!r} is not an ISO 8601 time such as 2026-11-26T10:00:00.000Z") from None


class CommandListener:
    def __init__(self, pipeline: Any, url: str = "", *, proto_lib: str = "", conn_str: str = "", topic: str = "",
                 config: str = "", handlers: list[Callable[[Command], Any]] | None = None, retry_max: float = 10.0,
                 now: Callable[[], float] | None = None):
        self.pipeline = pipeline
        self.target = parse_target(url, proto_lib=proto_lib, conn_str=conn_str, topic=topic, config=config)
        self.topics = [t for t in self.target.topic.split(",") if t] or ["vidpipe/commands"]
        self.handlers = list(handlers or [])
        self.retry_max = retry_max
        self.now = now or (lambda: datetime.now(timezone.utc).timestamp())
        self.counters = {"received": 0, "done": 0, "failed": 0, "malformed": 0, "reconnects": 0}
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.adapter = make_adapter(self.target)

    def start(self) -> "CommandListener":
        self._thread = threading.Thread(target=self._loop, name="vidpipe:commands", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self.adapter.close()
        except Exception as e:  # noqa: BLE001 - closing a dead connection
            log.debug("commands: closing the connection: %s", e)

    def _post(self, kind: str, text: str, **data: Any) -> None:
        self.pipeline.bus.post(kind, "commands", text, **data)

    def _loop(self) -> None:
        wait, warned = 0.2, False
        while not self._stop.is_set():
            try:
                self.adapter.connect()
                self.adapter.subscribe(self.topics)
            except BrokerError as e:
                self._post("error", f"commands: {e}")
                self._stop.wait(self.retry_max)
                continue
            except (ConnectionError, OSError) as e:
                if not warned:
                    self._post("warning", f"commands: cannot reach {self.target.describe()} ({e}); retrying")
                    warned = True
                self._stop.wait(wait)
                wait = min(wait * 2, self.retry_max)
                continue
            except Exception as e:  # noqa: BLE001 - a client library's own error: report, retry slowly
                self._post("error", f"commands: subscribing on {self.target.describe()} failed: {e}")
                self._stop.wait(self.retry_max)
                continue
            wait, warned = 0.2, False
            self.connected.set()
            try:
                while not self._stop.is_set():
                    for topic, data in self.adapter.receive(0.2):
                        self.handle(data, topic)
            except (ConnectionError, OSError) as e:
                log.info("commands: %s; reconnecting", e)
                self.counters["reconnects"] += 1
            self.connected.clear()
            try:
                self.adapter.close()
            except Exception as e:  # noqa: BLE001 - a half-dead client
                log.debug("commands: closing the old connection: %s", e)

    def handle(self, data: bytes | str, topic: str = "") -> Any:
        """Runs one message (also callable directly); returns the command's result or None."""
        self.counters["received"] += 1
        try:
            cmd = parse_command(data)
        except ValueError as e:
            self.counters["malformed"] += 1
            text = data[:200].decode(errors="replace") if isinstance(data, bytes) else data[:200]
            self._post("warning", f"commands: ignored a message on '{topic}': {e}: {text}")
            return None
        cmd.topic = topic
        try:
            result = self.run(cmd)
        except (VidpipeError, ValueError, KeyError) as e:
            self.counters["failed"] += 1
            self._post("element", f"commands: {cmd.name} {cmd.sensor}: {e}", command=cmd.name, sensor=cmd.sensor,
                       ok=False, error=str(e))
            return None
        self.counters["done"] += 1
        self._post("element", f"commands: {cmd.name} {cmd.sensor}: done", command=cmd.name, sensor=cmd.sensor, ok=True,
                   result=result)
        return result

    def run(self, cmd: Command) -> Any:
        for h in self.handlers:
            h(cmd)
        p, b = self.pipeline, cmd.body
        if cmd.name == "start-recording":
            el = p.streams.find(cmd.sensor)
            now = self.now()
            before = max(0.0, now - _time(b["start"], "start")) if b.get("start") else None
            duration = max(0.0, _time(b["end"], "end") - now) if b.get("end") else None
            return p.smart_record.start(el.stream_id(), start_before=before, duration=duration)
        if cmd.name == "stop-recording":
            info = p.smart_record.stop(p.streams.find(cmd.sensor).stream_id())
            return getattr(info, "path", None)
        if cmd.name == "add-stream":
            uri = b.get("uri") or b.get("camera_url")
            return p.streams.add(uri, sensor_id=cmd.sensor, **b.get("options", {}))
        if cmd.name == "remove-stream":
            return p.streams.remove(cmd.sensor)
        if not self.handlers:
            raise ValueError(f"unknown command '{cmd.name}' (start-recording, stop-recording, add-stream, "
                             "remove-stream, or add a handler)")
        return None
