"""An asyncio RTSP server (RFC 2326, with what RFC 7826 clients need), running in its own thread.

Mounts are fed EncodedPackets from pipeline threads (`Mount.send`). Each client session gets
its own RTP sequence and SSRC; a client that joins late, or that fell behind, starts at the next
keyframe (parameter sets travel in-band with every keyframe). A slow or stalled client never
blocks the pipeline or other clients: its socket buffer is bounded, packets beyond it are
dropped and counted, and a client that stays stalled is disconnected.
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..core.meta import EncodedPacket
from ..errors import MediaError
from .auth import Authenticator
from .rtp import RtpStream, access_unit_payloads, parameter_sets, sdp, split_nals

log = logging.getLogger("vidpipe.rtsp")
METHODS = ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER")
MAX_HEADER = 8192
MAX_BODY = 4096
SEND_BUFFER_LIMIT = 1 << 20     # bytes queued for one TCP client before its packets are dropped
STALL_DISCONNECT_S = 10.0       # a client dropping everything this long is disconnected
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           454: "Session Not Found", 455: "Method Not Valid in This State", 459: "Aggregate Operation Not Allowed",
           461: "Unsupported Transport", 501: "Not Implemented", 503: "Service Unavailable", 505: "RTSP Version Not Supported"}


class RtspError(Exception):
    def __init__(self, code: int, text: str = ""):
        super().__init__(text or REASONS.get(code, ""))
        self.code = code


@dataclass(eq=False)
class Session:
    id: str
    mount: "Mount"
    transport: str                  # "tcp" | "udp"
    conn: "Connection | None"
    channel: int = 0
    udp_addr: tuple[str, int] | None = None
    playing: bool = False
    waiting_key: bool = True
    rtp: RtpStream = field(default_factory=lambda: RtpStream(random.getrandbits(32), random.getrandbits(16)))
    last_seen: float = field(default_factory=time.monotonic)
    stalled_since: float | None = None
    sent: int = 0
    dropped: int = 0


class Mount:
    """One stream path on the server (e.g. /ds-test)."""

    def __init__(self, server: "RtspServer", path: str, codec: str):
        self.server, self.path, self.codec = server, path, codec
        self.params: dict[str, bytes] = {}
        self.size = (0, 0)
        self.sessions: set[Session] = set()
        self._have_params = asyncio.Event()
        self.frames = 0
        self.last_rtp_ts = 0

    def send(self, pkt: EncodedPacket) -> None:
        """Thread-safe: called from the pipeline."""
        self.server.call(self._on_packet, pkt)

    def _on_packet(self, pkt: EncodedPacket) -> None:
        self.frames += 1
        if pkt.keyframe:
            ps = parameter_sets(split_nals(pkt.data), self.codec)
            if ps.keys() >= ({"vps", "sps", "pps"} if self.codec == "hevc" else {"sps", "pps"}):
                self.params = ps
                self.size = (pkt.width, pkt.height)
                self._have_params.set()
        rtp_ts = int(pkt.pts * pkt.time_base * 90000) if pkt.time_base != 0 else pkt.pts
        self.last_rtp_ts = rtp_ts
        payloads = None
        now = time.monotonic()
        for s in list(self.sessions):
            if not s.playing:
                continue
            if s.waiting_key:
                if not pkt.keyframe:
                    continue
                s.waiting_key = False
            if payloads is None:
                payloads = access_unit_payloads(pkt.data, self.codec)
            packets = s.rtp.packetise(payloads, rtp_ts)
            if not self.server._deliver(s, packets):
                s.dropped += len(packets)
                s.waiting_key = True  # a hole in the stream: resume cleanly at the next keyframe
                s.stalled_since = s.stalled_since or now
                if now - s.stalled_since > STALL_DISCONNECT_S:
                    log.warning("client %s on %s stalled for %.0fs: disconnecting", s.id, self.path, STALL_DISCONNECT_S)
                    self.server._end_session(s, close_conn=True)
            else:
                s.sent += len(packets)
                s.stalled_since = None

    def close(self) -> None:
        self.server.call(self._close)

    def _close(self) -> None:
        for s in list(self.sessions):
            self.server._end_session(s, close_conn=True, bye=True)
        self.server.mounts.pop(self.path, None)

    def stats(self) -> dict[str, Any]:
        return {"frames": self.frames, "sessions": len(self.sessions),
                "sent": sum(s.sent for s in self.sessions), "dropped": sum(s.dropped for s in self.sessions)}


class Connection(asyncio.Protocol):
    """One RTSP control connection (also carries interleaved RTP/RTCP for TCP sessions)."""

    def __init__(self, server: "RtspServer"):
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sessions: set[Session] = set()
        self.peer = ("?", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername") or ("?", 0)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for s in list(self.sessions):
            if s.transport == "tcp":
                self.server._end_session(s)
            else:
                s.conn = None  # UDP sessions outlive their control connection until timeout/TEARDOWN

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for s in self.sessions:
            s.last_seen = time.monotonic()
        while self.buf:
            if self.buf[0] == 0x24:  # '$' interleaved binary (client RTCP): skip it
                if len(self.buf) < 4:
                    return
                n = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) < 4 + n:
                    return
                del self.buf[:4 + n]
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    self._reply_raw(400, "0", {}, b"")
                    self.close()
                return
            head = bytes(self.buf[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    try:
                        length = int(v.strip())
                    except ValueError:
                        length = -1
            if length < 0 or length > MAX_BODY:
                self._reply_raw(400, "0", {}, b"")
                self.close()
                return
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            self.server.requests += 1
            self._handle(head, body)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _reply_raw(self, code: int, cseq: str, headers: dict[str, str], body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        lines = [f"RTSP/1.0 {code} {REASONS.get(code, 'Error')}", f"CSeq: {cseq}", "Server: vidpipe"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _handle(self, head: bytes, body: bytes) -> None:
        cseq = "0"
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            self._reply_raw(400, cseq, {}, b"")
            return
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                self._reply_raw(400, cseq, {}, b"")
                return
            headers[k.strip().lower()] = v.strip()
        cseq = headers.get("cseq", "0")
        if len(parts) != 3 or not parts[2].startswith("RTSP/"):
            self._reply_raw(400, cseq, {}, b"")
            return
        if parts[2] not in ("RTSP/1.0", "RTSP/2.0"):
            self._reply_raw(505, cseq, {}, b"")
            return
        method, uri = parts[0], parts[1]
        if not method.isascii() or not method.replace("_", "").isalpha() or not method.isupper():
            self._reply_raw(400, cseq, {}, b"")
            return
        if "cseq" not in headers or not cseq.isdigit():
            self._reply_raw(400, cseq, {}, b"")
            return
        if method == "DESCRIBE":
            try:
                m, _ = self.server._mount_for(uri)
            except RtspError:
                m = None
            if m is not None and not m.params:  # stream not started yet: wait for its first keyframe
                asyncio.get_running_loop().create_task(self._describe_later(m, cseq, method, uri, headers, body))
                return
        self._respond(cseq, method, uri, headers, body)

    async def _describe_later(self, m: "Mount", cseq: str, method: str, uri: str, headers: dict, body: bytes) -> None:
        try:
            await asyncio.wait_for(m._have_params.wait(), 10.0)
        except asyncio.TimeoutError:
            pass
        self._respond(cseq, method, uri, headers, body)

    def _respond(self, cseq: str, method: str, uri: str, headers: dict, body: bytes) -> None:
        try:
            code, extra, out = self.server.handle(self, method, uri, headers, body)
        except RtspError as e:
            code, extra, out = e.code, {}, b""
            if e.code == 401 and self.server.auth is not None:
                extra = {"WWW-Authenticate": self.server.auth.challenge()}
        self._reply_raw(code, cseq, extra, out)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: "RtspServer"):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for s in self.server.sessions.values():  # client RTCP receiver reports keep UDP sessions alive
            if s.udp_addr is not None and s.udp_addr[0] == addr[0] and s.udp_addr[1] + 1 == addr[1]:
                s.last_seen = time.monotonic()


class RtspServer:
    """`server = RtspServer("127.0.0.1", 8554); server.start(); mount = server.mount("/ds-test")`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8554, *, auth: Authenticator | None = None,
                 session_timeout: float = 60.0):
        self.host, self.port, self.auth, self.session_timeout = host, port, auth, session_timeout
        self.mounts: dict[str, Mount] = {}
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.requests = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._rtp: _Udp | None = None
        self._rtcp: _Udp | None = None
        self.udp_ports = (0, 0)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "RtspServer":
        self._thread = threading.Thread(target=self._main, name=f"vidpipe-rtsp:{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise MediaError(f"RTSP server cannot listen on {self.host}:{self.port}: {self._error}; "
                             "choose another port (port=...) or stop what uses it") from None
        return self

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._open())
        except OSError as e:
            self._error = e
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._shutdown())
        self.loop.close()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), self.host, self.port, reuse_address=True)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        for _ in range(50):  # an even/odd UDP port pair for RTP/RTCP
            base = random.randrange(20000, 60000, 2)
            try:
                _, self._rtp = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, base))
            except OSError:
                continue
            try:
                _, self._rtcp = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host, base + 1))
            except OSError:
                self._rtp.transport.close()  # type: ignore[union-attr]
                continue
            self.udp_ports = (base, base + 1)
            break
        self._tick = loop.create_task(self._housekeeping())

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for s in list(self.sessions.values()):
                if now - s.last_seen > self.session_timeout:
                    log.info("session %s timed out", s.id)
                    self._end_session(s, close_conn=s.transport == "tcp")
                elif s.playing:
                    self._send_rtcp(s, s.rtp.sender_report())

    async def _shutdown(self) -> None:
        for m in list(self.mounts.values()):
            m._close()
        self._tick.cancel()
        self._server.close()
        for c in list(self.connections):
            c.close()
        for u in (self._rtp, self._rtcp):
            if u is not None and u.transport is not None:
                u.transport.close()
        await asyncio.sleep(0)

    def stop(self) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def call(self, fn, *args) -> None:
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # loop closed meanwhile
                pass

    def run_sync(self, fn, *args, timeout: float = 5.0):
        """Run fn in the server's loop and return its result (for stats and tests)."""
        fut = asyncio.run_coroutine_threadsafe(self._call(fn, *args), self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    @staticmethod
    async def _call(fn, *args):
        return fn(*args)

    def mount(self, path: str, codec: str = "h264") -> Mount:
        path = "/" + path.strip("/")
        codec = "hevc" if codec.lower() in ("h265", "hevc") else "h264"

        def make() -> Mount:
            if path in self.mounts:
                raise MediaError(f"RTSP mount {path} is already in use on port {self.port}")
            m = self.mounts[path] = Mount(self, path, codec)
            return m
        return self.run_sync(make)

    def url(self, path: str) -> str:
        return f"rtsp://{self.host}:{self.port}/{path.strip('/')}"

    # -- delivery ----------------------------------------------------------------------------
    def _deliver(self, s: Session, packets: list[bytes]) -> bool:
        if s.transport == "tcp":
            t = s.conn.transport if s.conn is not None else None
            if t is None or t.is_closing():
                return False
            if t.get_write_buffer_size() > SEND_BUFFER_LIMIT:
                return False
            t.write(b"".join(b"$" + bytes([s.channel]) + len(p).to_bytes(2, "big") + p for p in packets))
            return True
        if self._rtp is None or self._rtp.transport is None or s.udp_addr is None:
            return False
        for p in packets:
            self._rtp.transport.sendto(p, s.udp_addr)
        return True

    def _send_rtcp(self, s: Session, data: bytes) -> None:
        if s.transport == "tcp":
            t = s.conn.transport if s.conn is not None else None
            if t is not None and not t.is_closing():
                t.write(b"$" + bytes([s.channel + 1]) + len(data).to_bytes(2, "big") + data)
        elif self._rtcp is not None and self._rtcp.transport is not None and s.udp_addr is not None:
            self._rtcp.transport.sendto(data, (s.udp_addr[0], s.udp_addr[1] + 1))

    def _end_session(self, s: Session, *, close_conn: bool = False, bye: bool = False) -> None:
        if bye and s.playing:
            self._send_rtcp(s, s.rtp.bye())
        s.playing = False
        self.sessions.pop(s.id, None)
        s.mount.sessions.discard(s)
        if s.conn is not None:
            s.conn.sessions.discard(s)
            if close_conn:
                s.conn.close()

    # -- requests ----------------------------------------------------------------------------
    def _mount_for(self, uri: str) -> tuple[Mount, str]:
        path = urlparse(uri).path if "://" in uri else uri
        path = "/" + path.strip("/")
        best = None
        for mp, m in self.mounts.items():
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best.path):
                    best = m
        if best is None:
            raise RtspError(404)
        return best, path[len(best.path):].strip("/")

    def _session(self, headers: dict[str, str]) -> Session:
        sid = headers.get("session", "").split(";")[0].strip()
        s = self.sessions.get(sid)
        if s is None:
            raise RtspError(454)
        s.last_seen = time.monotonic()
        return s

    def handle(self, conn: Connection, method: str, uri: str, headers: dict[str, str], body: bytes):
        if method not in METHODS:
            raise RtspError(501)
        if method == "OPTIONS":
            if "session" in headers and headers["session"]:
                self._session(headers)
            return 200, {"Public": ", ".join(METHODS)}, b""
        if self.auth is not None and not self.auth.check(headers.get("authorization"), method, uri):
            raise RtspError(401)
        if method == "GET_PARAMETER" or method == "SET_PARAMETER":
            if headers.get("session"):
                s = self._session(headers)
                return 200, {"Session": f"{s.id};timeout={int(self.session_timeout)}"}, b""
            return 200, {}, b""
        if method == "DESCRIBE":
            m, rest = self._mount_for(uri)
            if rest:  # a path below a mount is a track's control URL, never a presentation
                raise RtspError(404)
            if not m.params:
                raise RtspError(503)
            text = sdp(m.codec, m.params, address=self.host if self.host != "0.0.0.0" else "0.0.0.0",
                       width=m.size[0], height=m.size[1]).encode()
            base = uri if uri.endswith("/") else uri + "/"
            return 200, {"Content-Type": "application/sdp", "Content-Base": base}, text
        if method == "SETUP":
            m, rest = self._mount_for(uri)
            if rest not in ("", "trackID=0"):  # the one track's control URL, or the presentation's
                raise RtspError(404)
            transport = headers.get("transport", "")
            if headers.get("session"):
                raise RtspError(459)  # one track per session: a second SETUP in a session is not needed
            return self._setup(conn, m, transport)
        s = self._session(headers)
        if s.mount.server is not self:
            raise RtspError(454)
        if method == "PLAY":
            s.playing = True
            s.waiting_key = True
            info = f"url={uri.rstrip('/')}/trackID=0;seq={s.rtp.seq};rtptime={s.mount.last_rtp_ts & 0xFFFFFFFF}"
            return 200, {"Session": f"{s.id};timeout={int(self.session_timeout)}", "Range": "npt=0.000-",
                         "RTP-Info": info}, b""
        if method == "PAUSE":
            if not s.playing:
                raise RtspError(455)
            s.playing = False
            return 200, {"Session": s.id}, b""
        if method == "TEARDOWN":
            self._end_session(s)
            return 200, {}, b""
        raise RtspError(501)

    def _setup(self, conn: Connection, m: Mount, transport: str):
        specs = [t.strip() for t in transport.split(",") if t.strip()]
        for spec in specs:
            fields = [f.strip() for f in spec.split(";")]
            proto = fields[0].upper()
            opts = dict((f.split("=", 1) + [""])[:2] for f in fields[1:])
            if "multicast" in fields:
                continue
            sid = f"{random.getrandbits(63):016X}"
            if proto == "RTP/AVP/TCP":
                try:
                    ch = int(opts.get("interleaved", "0-1").split("-")[0])
                except ValueError:
                    raise RtspError(400) from None
                if not 0 <= ch <= 254:
                    raise RtspError(400)
                s = Session(sid, m, "tcp", conn, channel=ch)
                reply = f"RTP/AVP/TCP;unicast;interleaved={ch}-{ch + 1};ssrc={s.rtp.ssrc:08X}"
            elif proto in ("RTP/AVP", "RTP/AVP/UDP"):
                try:
                    lo = int(opts.get("client_port", "").split("-")[0])
                except ValueError:
                    raise RtspError(400) from None
                if not 0 < lo < 65535 or self.udp_ports == (0, 0):
                    raise RtspError(461)
                host = conn.peer[0]
                s = Session(sid, m, "udp", conn, udp_addr=(host, lo))
                reply = (f"RTP/AVP;unicast;client_port={lo}-{lo + 1};server_port={self.udp_ports[0]}-{self.udp_ports[1]};"
                         f"ssrc={s.rtp.ssrc:08X}")
            else:
                continue
            self.sessions[sid] = s
            m.sessions.add(s)
            conn.sessions.add(s)
            return 200, {"Transport": reply, "Session": f"{sid};timeout={int(self.session_timeout)}"}, b""
        raise RtspError(461)

    def counters(self) -> dict[str, int]:
        """Live sessions, connections and asyncio tasks (for leak checks)."""
        def read() -> dict[str, int]:
            return {"sessions": len(self.sessions), "connections": len(self.connections),
                    "tasks": len(asyncio.all_tasks(self.loop)), "requests": self.requests}
        return self.run_sync(read)


_SERVERS: dict[tuple[str, int], tuple[RtspServer, int]] = {}
_LOCK = threading.Lock()


def get_server(host: str, port: int, auth: Authenticator | None = None) -> RtspServer:
    """The shared server on host:port (started on first use); pair with release_server."""
    with _LOCK:
        if (host, port) in _SERVERS:
            srv, n = _SERVERS[(host, port)]
            _SERVERS[(host, port)] = (srv, n + 1)
            return srv
        srv = RtspServer(host, port, auth=auth).start()
        _SERVERS[(host, srv.port)] = (srv, 1)
        return srv


def release_server(srv: RtspServer) -> None:
    with _LOCK:
        key = (srv.host, srv.port)
        if key not in _SERVERS:
            return
        s, n = _SERVERS[key]
        if n > 1:
            _SERVERS[key] = (s, n - 1)
            return
        del _SERVERS[key]
    srv.stop()
