"""The HTTP service: REST API, /metrics and the browser console, in the pipeline's process.

aiohttp (one asyncio loop in its own thread): it serves many long-lived MJPEG responses cheaply
and needs no ASGI server. Pipeline calls that block (removing a stream joins its thread) run in
the loop's executor, so the API never stalls the video nor the other requests.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import threading
import time
import weakref
from importlib import resources
from typing import Any

from aiohttp import web

from ..errors import VidpipeError
from .monitor import Monitor

log = logging.getLogger("vidpipe")
API = "/api/v1"


def parse_address(address: str) -> tuple[str, int]:
    """"8080", ":8080", "127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080" -> (host, port)."""
    a = address.strip()
    host, _, port = a.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise VidpipeError(f"--http '{address}': expected HOST:PORT such as 127.0.0.1:8080")
    return host, int(port)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, default=str), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "send a JSON body with Content-Type: application/json")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


class Service:
    """`Service(pipeline, "127.0.0.1:8080", token=...)`; start() serves until stop().

    token: guards every write (Authorization: Bearer TOKEN); None takes $VIDPIPE_HTTP_TOKEN, else a
    random one (printed by the CLI with the console's URL). tap: the element whose input the
    console watches (default: the tiler's, else the osd's, else the last element's). Live views:
    up to max_fps frames per second per stream, scaled to at most `width` pixels wide."""

    def __init__(self, pipeline: Any, address: str = "127.0.0.1:8080", *, token: str | None = None,
                 tap: str = "", max_fps: float = 10.0, width: int = 384):
        self.pipeline = pipeline
        self.host, self.port = parse_address(address)
        self.token = token or os.environ.get("VIDPIPE_HTTP_TOKEN") or secrets.token_urlsafe(18)
        self.monitor = Monitor(max_fps=max_fps, width=width)
        self.tap_name = tap
        self.started_at = time.time()
        self.history: list[dict[str, Any]] = []          # a sample every 2 s, for the console's charts
        self._gaps: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._probe = None

    # -- life --------------------------------------------------------------------------------------
    def _tap_pad(self):
        els = self.pipeline.elements
        if self.tap_name:
            el = self.pipeline[self.tap_name]
        else:
            el = next((e for e in els if e.factory_name == "tiler"), None) or \
                next((e for e in els if e.factory_name == "osd"), None) or \
                next((e for e in reversed(els) if e.sink_pads), None)
        if el is None or not el.sink_pads:
            raise VidpipeError("the console needs an element with an input to watch (tap=)")
        return next(iter(el.sink_pads.values()))

    def start(self) -> "Service":
        from .metrics import make_registry
        self.registry = make_registry(self)
        pad = self._tap_pad()
        self._probe = (pad, pad.add_probe(self.monitor.probe))
        self.pipeline.bus.add_listener(self._on_bus)
        self._thread = threading.Thread(target=self._serve, name="vidpipe:http", daemon=True)
        self._thread.start()
        if not self._ready.wait(60) and self._error is None:  # never run a pipeline whose service is not up
            self._error = TimeoutError("the HTTP server did not start within 60 s")
        if self._error is not None:
            self.stop()
            err = self._error
            if isinstance(err, OSError):
                raise VidpipeError(f"--http {self.host}:{self.port}: cannot listen there ({err.strerror or err}); "
                                   "pick another port") from None
            raise VidpipeError(f"the HTTP service did not start: {err}") from None
        threading.Thread(target=self._sample, name="vidpipe:http-history", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner = None
        try:
            runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            loop.run_until_complete(site.start())
            if self.port == 0:
                self.port = runner.addresses[0][1]
        except BaseException as e:  # noqa: BLE001 - reported by start()
            self._error = e
            try:  # nothing left open behind the error (the runner, the loop)
                if runner is not None:
                    loop.run_until_complete(runner.cleanup())
                loop.close()
            except Exception:  # noqa: BLE001 - the error above is the one to report
                pass
            self._ready.set()
            return
        self._runner = runner
        self._fresh: dict[int, asyncio.Event] = {}        # source id -> set when its next JPEG is ready

        def fresh(sid: int) -> None:                     # in the loop: wake that stream's viewers
            ev = self._fresh.pop(sid, None)
            if ev is not None:
                ev.set()

        def wake(sid: int) -> None:                      # in the encoder thread
            try:
                loop.call_soon_threadsafe(fresh, sid)
            except RuntimeError:                         # the loop closed: the service is stopping
                pass
        self.monitor.on_snapshot = wake
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        self._stopping.set()
        self.pipeline.bus.remove_listener(self._on_bus)
        if self._probe is not None:
            pad, pid = self._probe
            pad.remove_probe(pid)
            self._probe = None
        self.monitor.close()
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _sample(self) -> None:
        while not self._stopping.wait(2.0):
            row = {"t": time.time(), "streams": {}}
            for sid in list(self.monitor.streams):
                st = self.monitor.stream_stats(sid)
                row["streams"][str(sid)] = {"fps": st["fps"], "latency_ms": st["latency_ms"]}
            self.history = (self.history + [row])[-150:]

    def _on_bus(self, m: Any) -> None:
        kind = m.type.value
        sid = m.data.get("source_id")
        if kind == "stream-gap" and sid is not None:
            self._gaps.add(sid)
        elif kind == "stream-resumed":
            self._gaps.discard(sid)
        elif kind == "stream-removed" and sid is not None:
            self.monitor.forget(sid)
        if kind in ("stream-added", "stream-removed", "stream-eos", "stream-gap", "stream-resumed", "error", "warning",
                    "recording-done") or (kind == "element" and "command" in m.data):
            self.monitor.event(kind, m.text, source=m.source, **({"source_id": sid} if sid is not None else {}))

    # -- the app -----------------------------------------------------------------------------------
    ROUTES = (("GET", "/", "index"), ("GET", "/static/{name}", "static"), ("GET", "/metrics", "metrics"),
              ("GET", "/video/{id}.mjpg", "mjpeg"), ("GET", "/video/{id}.jpg", "jpeg"),
              ("GET", f"{API}/openapi.json", "openapi"), ("GET", f"{API}/pipeline", "get_pipeline"),
              ("PUT", f"{API}/pipeline/state", "set_state"), ("GET", f"{API}/streams", "list_streams"),
              ("POST", f"{API}/streams", "add_stream"), ("GET", f"{API}/streams/{{id}}", "get_stream"),
              ("DELETE", f"{API}/streams/{{id}}", "remove_stream"),
              ("POST", f"{API}/streams/{{id}}/recording", "start_recording"),
              ("DELETE", f"{API}/streams/{{id}}/recording", "stop_recording"),
              ("GET", f"{API}/elements", "list_elements"), ("GET", f"{API}/elements/{{name}}", "get_element"),
              ("PATCH", f"{API}/elements/{{name}}", "set_element"), ("GET", f"{API}/events", "events"),
              ("GET", f"{API}/history", "get_history"))

    def app(self) -> web.Application:
        """The routes call module-level handlers that find this service in the app: aiohttp keeps
        handlers and middlewares in a process-wide LRU cache, which must not hold a pipeline."""
        app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
        app[SERVICE] = weakref.ref(self)      # the app itself lands in that cache too
        for method, path, name in self.ROUTES:
            app.router.add_route(method, path, _HANDLERS[name])
        return app

    async def handle_errors(self, request: web.Request, handler):
        try:
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                self._authorize(request)
            return await handler(request)
        except ApiError as e:
            return _json({"error": str(e), "status": e.status}, e.status)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _json({"error": e.reason, "status": e.status}, e.status)
        except VidpipeError as e:
            return _json({"error": str(e), "status": 400}, 400)
        except Exception as e:  # noqa: BLE001 - a bug must not take the service down
            log.exception("HTTP %s %s failed", request.method, request.path)
            return _json({"error": f"internal error: {type(e).__name__}: {e}", "status": 500}, 500)

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(401, "this request changes the pipeline: send Authorization: Bearer TOKEN (the token "
                           "the service printed, --http-token or $VIDPIPE_HTTP_TOKEN)")
        if not hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
            raise ApiError(403, "wrong token")

    async def _call(self, fn, *args, **kw):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: fn(*args, **kw))

    # -- static ------------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        return await self.static(request, "index.html")

    async def static(self, request: web.Request, name: str | None = None) -> web.Response:
        name = name or request.match_info["name"]
        kinds = {".html": "text/html", ".js": "application/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        ext = os.path.splitext(name)[1]
        res = resources.files(__package__).joinpath("static", name)
        if "/" in name or ext not in kinds or not res.is_file():
            raise ApiError(404, f"no file '{name}'")
        return web.Response(body=res.read_bytes(), content_type=kinds[ext],
                            headers={"Cache-Control": "no-cache"})

    # -- metrics, video ----------------------------------------------------------------------------
    async def metrics(self, request: web.Request) -> web.Response:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _sid(self, request: web.Request) -> int:
        key = request.match_info["id"]
        try:
            return self.pipeline.streams.find(key).stream_id()
        except VidpipeError:
            if key.isdigit() and int(key) in self.monitor.streams:
                return int(key)
            raise ApiError(404, f"no stream '{key}'") from None

    async def mjpeg(self, request: web.Request) -> web.StreamResponse:
        sid = self._sid(request)
        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame",
                                           "Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})
        drawn = request.query.get("boxes", "drawn") != "json"
        await resp.prepare(request)
        self.monitor.watch(sid, +1, drawn)
        seq = 0
        try:
            while not self._stopping.is_set():
                snap = self.monitor.latest.get((sid, drawn))
                if snap is None or snap.seq <= seq:
                    ev = self._fresh.setdefault(sid, asyncio.Event())
                    try:
                        await asyncio.wait_for(ev.wait(), 1.0)
                    except asyncio.TimeoutError:
                        if sid not in self.monitor.streams:
                            break
                    continue
                seq = snap.seq
                objs = "" if drawn else f"X-Objects: {snap.objects}\r\n"
                head = (f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(snap.jpeg)}\r\n"
                        f"X-Capture-Time: {snap.captured:.6f}\r\nX-Frame-Seq: {snap.seq}\r\n{objs}\r\n").encode()
                await resp.write(head + snap.jpeg + b"\r\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.monitor.watch(sid, -1, drawn)
        return resp

    async def jpeg(self, request: web.Request) -> web.Response:
        sid = self._sid(request)
        self.monitor.watch(sid, +1)
        try:
            snap = await self._call(self.monitor.wait_newer, sid, 0, 3.0)
        finally:
            self.monitor.watch(sid, -1)
        if snap is None:
            raise ApiError(503, f"no frame of stream {sid} yet")
        return web.Response(body=snap.jpeg, content_type="image/jpeg",
                            headers={"X-Capture-Time": f"{snap.captured:.6f}", "Cache-Control": "no-cache"})

    # -- REST --------------------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        from .openapi import schema
        return _json(schema())

    async def get_pipeline(self, request: web.Request) -> web.Response:
        p = self.pipeline
        return _json({"name": p.name, "state": p.state, "uptime_s": round(time.time() - self.started_at, 1),
                      "streams": len(p.streams.sources()), "elements": [e.name for e in p.elements],
                      "errors": [m.text for m in p.bus.errors()]})

    async def set_state(self, request: web.Request) -> web.Response:
        body = await _body(request)
        state = body.get("state")
        p = self.pipeline
        if state == "paused":
            p.pause()
        elif state == "playing":
            p.play()
        elif state == "stopped":
            p.send_eos()
        else:
            raise ApiError(400, f"'state' must be playing, paused or stopped, got {state!r}")
        return _json({"state": p.state})

    def _row(self, row: dict[str, Any]) -> dict[str, Any]:
        sid = row["source_id"]
        st = self.monitor.stream_stats(sid)
        state = "reconnecting" if sid in self._gaps else ("paused" if self.pipeline.state == "paused" else "playing")
        return {**row, "frames": st["frames"] or row["frames"], "fps": st["fps"], "latency_ms": st["latency_ms"],
                "latency_p95_ms": st["latency_p95_ms"], "state": state,
                "video": f"/video/{sid}.mjpg"}

    async def list_streams(self, request: web.Request) -> web.Response:
        return _json({"streams": [self._row(r) for r in self.pipeline.streams.info()]})

    async def get_stream(self, request: web.Request) -> web.Response:
        sid = self._sid(request)
        for r in self.pipeline.streams.info():
            if r["source_id"] == sid:
                return _json(self._row(r))
        raise ApiError(404, f"no stream '{request.match_info['id']}'")

    async def add_stream(self, request: web.Request) -> web.Response:
        body = await _body(request)
        uri = body.get("uri")
        if not isinstance(uri, str) or not uri.strip():
            raise ApiError(400, "'uri' (a file path or rtsp:// / http:// URL) is required")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise ApiError(400, "'options' must be an object of urisrc properties")
        sensor = str(body.get("sensor_id") or "")
        sid = await self._call(self.pipeline.streams.add, uri.strip(), sensor_id=sensor, **options)
        self.monitor.event("stream-added", f"stream {sid} added over HTTP: {uri}", source_id=sid)
        return _json({"source_id": sid, "sensor_id": sensor or str(sid), "uri": uri.strip(),
                      "video": f"/video/{sid}.mjpg"}, 201)

    async def remove_stream(self, request: web.Request) -> web.Response:
        key = request.match_info["id"]
        sid = await self._call(self.pipeline.streams.remove, key)
        self.monitor.forget(sid)
        return _json({"removed": sid})

    async def start_recording(self, request: web.Request) -> web.Response:
        sid = self._sid(request)
        body = await _body(request) if request.can_read_body else {}
        kw = {}
        for k in ("start_before", "duration"):
            if body.get(k) is not None:
                if not isinstance(body[k], (int, float)) or isinstance(body[k], bool) or body[k] < 0:
                    raise ApiError(400, f"'{k}' must be a number of seconds >= 0")
                kw[k] = float(body[k])
        path = await self._call(self.pipeline.smart_record.start, sid, annotated=bool(body.get("annotated")), **kw)
        return _json({"source_id": sid, "path": path}, 201)

    async def stop_recording(self, request: web.Request) -> web.Response:
        sid = self._sid(request)
        info = await self._call(self.pipeline.smart_record.stop, sid)
        if info is None:
            raise ApiError(404, f"stream {sid} is not recording")
        return _json({"source_id": sid, "path": getattr(info, "path", None)})

    def _element(self, el: Any) -> dict[str, Any]:
        props = {}
        for name in el.properties():
            v = el.get_property(name)
            props[name] = v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
        one = len(el.sink_pads) == 1 and len(el.src_pads) == 1
        return {"name": el.name, "factory": el.factory_name, "enabled": not el.bypass,
                "live_properties": sorted({*el.live_properties, *(["enabled"] if one else [])}),
                "properties": props, "stats": dict(el.stats)}

    def _find_element(self, request: web.Request) -> Any:
        name = request.match_info["name"]
        for el in self.pipeline.elements:
            if el.name == name:
                return el
        raise ApiError(404, f"no element '{name}'")

    async def list_elements(self, request: web.Request) -> web.Response:
        return _json({"elements": [self._element(e) for e in list(self.pipeline.elements)]})

    async def get_element(self, request: web.Request) -> web.Response:
        return _json(self._element(self._find_element(request)))

    async def set_element(self, request: web.Request) -> web.Response:
        el = self._find_element(request)
        body = await _body(request)
        if not body:
            raise ApiError(400, "send the properties to change, e.g. {\"threshold\": 0.5}")
        done = {}
        for k, v in body.items():        # all checked before any is applied
            el.check_live(k, v)
        for k, v in body.items():
            done[k] = el.set_live(k, v)
        self.monitor.event("element", f"{el.name}: {', '.join(f'{k}={v}' for k, v in done.items())} over HTTP")
        return _json({"name": el.name, "changed": done})

    async def events(self, request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
            limit = min(500, max(1, int(request.query.get("limit", "100"))))
        except ValueError:
            raise ApiError(400, "'after' and 'limit' are integers") from None
        evs = self.monitor.recent_events(after, limit)
        return _json({"events": evs, "last": evs[-1]["id"] if evs else after})

    async def get_history(self, request: web.Request) -> web.Response:
        return _json({"interval_s": 2.0, "samples": self.history})


SERVICE: web.AppKey[weakref.ref] = web.AppKey("vidpipe_service", weakref.ref)


def _service(request: web.Request) -> Service:
    svc = request.app[SERVICE]()
    if svc is None:
        raise web.HTTPServiceUnavailable(reason="the service is stopping")
    return svc


@web.middleware
async def _errors(request: web.Request, handler):
    return await _service(request).handle_errors(request, handler)


def _handler(name: str):
    async def handler(request: web.Request):
        return await getattr(_service(request), name)(request)
    handler.__name__ = handler.__qualname__ = name
    return handler


_HANDLERS = {name: _handler(name) for _, _, name in Service.ROUTES}
