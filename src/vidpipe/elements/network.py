"""Network outputs: rtspsink (vidpipe's RTSP server) and udpsink (RTP over UDP + SDP file)."""
from __future__ import annotations

import logging
import os
import random
import socket
import time
from typing import Iterable

from ..core.clock import Pacer
from ..core.element import Sink
from ..core.events import Event, StreamStart
from ..core.meta import Batch, EncodedPacket
from ..core.props import Prop
from ..core.registry import register
from ..errors import MediaError, PropertyError
from .encode import EncoderPool, _EncodeProps

log = logging.getLogger("vidpipe")


class _NetSink(_EncodeProps, Sink):
    """Shared by rtspsink and udpsink: encodes when no encoder is upstream, paces, routes packets."""

    codec = Prop(str, "H264", "video codec", choices=["H264", "H265"])
    bitrate = Prop(int, 4_000_000, "target bits per second (0: constant quality, see crf)", minimum=0)
    iframeinterval = Prop(int, 30, "keyframe interval in frames (late joiners wait at most this long)", minimum=1)
    tune = Prop(str, "zerolatency", "x264 tune", choices=["", "zerolatency", "film", "animation"])
    sync = Prop(bool, True, "send at the stream's real-time pace (false: as fast as frames come)")

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.pool = EncoderPool(self)
        self._pacer = Pacer()
        self.sources: set[int] = set()

    @property
    def codec_name(self) -> str:
        return "hevc" if self.codec.upper() == "H265" else "h264"

    def handle_event(self, event: Event) -> None:
        if isinstance(event, StreamStart) and event.fps:
            self.pool.fps[event.source_id] = event.fps

    def process(self, batch: Batch) -> None:
        if batch.encoded is not None:
            packets = batch.encoded
        else:
            packets = self.pool.encode(batch)
        for p in packets:
            if p.codec != self.codec_name:
                raise MediaError(f"{self.name}: codec={self.codec} but the upstream encoder makes {p.codec}; "
                                 "set the same codec on both")
            self.sources.add(p.source_id)
            if len(self.sources) > 1:
                raise MediaError(f"{self.name}: frames of several streams reach one output; put a tiler before it")
            if self.sync:
                self._pacer.wait(p.pts * float(p.time_base), self._abort)
            self.deliver(p)

    def finish(self) -> Iterable[Batch]:
        for p in self.pool.flush():
            self.deliver(p)
        self.close()
        return ()

    def deliver(self, p: EncodedPacket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def stop(self) -> None:
        self.close()


@register("rtspsink")
class RtspSink(_NetSink):
    """Serves the video over RTSP with vidpipe's own server (TCP-interleaved and UDP RTP, many
    clients, optional Basic/Digest auth). Several rtspsinks on one port share the server."""

    description = "RTSP server output"
    port = Prop(int, 8554, "TCP port of the RTSP server (0: any free port)", minimum=0, maximum=65535)
    mount = Prop(str, "/ds-test", "path of the stream")
    bind_address = Prop(str, "127.0.0.1", "address to listen on; 0.0.0.0 to accept other machines")
    user = Prop(str, "", "user name: when set, clients must authenticate")
    password = Prop(str, "", "password for `user`")
    auth = Prop(str, "digest", "authentication scheme when user is set", choices=["basic", "digest"])

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.server = None
        self._mount = None
        self.url = ""

    def start(self) -> None:
        from ..rtsp import get_server
        from ..rtsp.auth import Authenticator

        auth = Authenticator(self.user, self.password, self.auth) if self.user else None
        self.server = get_server(self.bind_address, self.port, auth)
        try:
            self._mount = self.server.mount(self.mount, self.codec_name)
        except MediaError:
            self._release()
            raise
        host = "localhost" if self.bind_address in ("127.0.0.1", "0.0.0.0") else self.bind_address
        self.url = f"rtsp://{host}:{self.server.port}/{self.mount.strip('/')}"
        self.post("info", f"serving {self.url}", url=self.url)
        log.info("%s: serving %s", self.name, self.url)

    def deliver(self, p: EncodedPacket) -> None:
        if self._mount is not None:
            self._mount.send(p)

    def close(self) -> None:
        if self._mount is not None:
            self._mount.close()
            self._mount = None
        self._release()

    def _release(self) -> None:
        if self.server is not None:
            from ..rtsp import release_server
            srv, self.server = self.server, None
            time.sleep(0.05)  # let the BYE/close reach the loop before a last user stops it
            release_server(srv)


@register("udpsink")
class UdpSink(_NetSink):
    """Sends RTP over UDP to host:port (unicast or multicast) and writes an SDP file that
    ffplay/VLC/GStreamer can open to receive it."""

    description = "RTP/UDP output with an SDP file"
    host = Prop(str, "127.0.0.1", "destination address (a 224.0.0.0/4 address sends multicast)")
    port = Prop(int, 5400, "destination RTP port (RTCP goes to port+1)", minimum=1, maximum=65534)
    sdp_file = Prop(str, "", "where to write the SDP description (empty: none)")
    ttl = Prop(int, 1, "multicast TTL", minimum=0, maximum=255)

    def __init__(self, name: str | None = None, **props):
        super().__init__(name, **props)
        self.sock: socket.socket | None = None
        self.rtp = None
        self._last_sr = 0.0
        self._sdp_written = False
        self.packets_sent = 0

    def start(self) -> None:
        from ..rtsp.rtp import RtpStream
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise PropertyError(f"{self.name}: cannot resolve host '{self.host}': {e}") from None
        fam = infos[0][0]
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        import ipaddress
        addr = ipaddress.ip_address(infos[0][4][0])
        if addr.is_multicast:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
        self.rtp = RtpStream(random.getrandbits(32), random.getrandbits(16))
        if self.sdp_file:
            d = os.path.dirname(os.path.abspath(self.sdp_file))
            if not os.path.isdir(d):
                raise MediaError(f"{self.name}: folder {d} for the SDP file does not exist")

    def deliver(self, p: EncodedPacket) -> None:
        from ..rtsp.rtp import access_unit_payloads, parameter_sets, sdp, split_nals
        assert self.sock is not None and self.rtp is not None
        if not self._sdp_written and p.keyframe and self.sdp_file:
            params = parameter_sets(split_nals(p.data), p.codec)
            tmp = self.sdp_file + ".part"
            with open(tmp, "w") as fh:
                fh.write(sdp(p.codec, params, address=self.host, port=self.port, control=None,
                             width=p.width, height=p.height))
            os.replace(tmp, self.sdp_file)
            self._sdp_written = True
        ts = int(p.pts * float(p.time_base) * 90000)
        for pkt in self.rtp.packetise(access_unit_payloads(p.data, p.codec), ts):
            self.sock.sendto(pkt, (self.host, self.port))
            self.packets_sent += 1
        now = time.monotonic()
        if now - self._last_sr >= 1.0:
            self._last_sr = now
            self.sock.sendto(self.rtp.sender_report(), (self.host, self.port + 1))

    def close(self) -> None:
        if self.sock is not None:
            if self.rtp is not None and self.rtp.packets:
                try:
                    self.sock.sendto(self.rtp.bye(), (self.host, self.port + 1))
                except OSError:
                    pass
            self.sock.close()
            self.sock = None
