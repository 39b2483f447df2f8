"""RTP packetisation of H.264/H.265 access units, SDP, and RTCP sender reports."""
from __future__ import annotations

import base64
import struct
import time

MTU_PAYLOAD = 1400  # RTP payload bytes per packet (fits a 1500-byte Ethernet frame with headers)
PT = 96
NTP_EPOCH = 2208988800


def split_nals(data: bytes) -> list[bytes]:
    """Annex-B byte stream -> NAL units (start codes removed)."""
    out = []
    i, n = 0, len(data)
    starts = []
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        nal = data[s:end]
        while nal.endswith(b"\x00") and k + 1 < len(starts):  # the zero of a 4-byte start code
            nal = nal[:-1]
        if nal:
            out.append(nal)
    return out


def nal_type(nal: bytes, codec: str) -> int:
    return (nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F


def parameter_sets(nals: list[bytes], codec: str) -> dict[str, bytes]:
    """SPS/PPS (and VPS for H.265) among the NAL units."""
    names = {32: "vps", 33: "sps", 34: "pps"} if codec == "hevc" else {7: "sps", 8: "pps"}
    return {names[t]: nal for nal in nals if (t := nal_type(nal, codec)) in names}


def fragment(nal: bytes, codec: str, mtu: int = MTU_PAYLOAD) -> list[bytes]:
    """RTP payloads for one NAL unit: single NAL packet, or FU-A (H.264) / FU (H.265) fragments."""
    if len(nal) <= mtu:
        return [nal]
    out = []
    if codec == "hevc":
        t = nal_type(nal, codec)
        hdr = bytes([(nal[0] & 0x81) | (49 << 1), nal[1]])
        body, size = nal[2:], mtu - 3
        for off in range(0, len(body), size):
            s, e = off == 0, off + size >= len(body)
            out.append(hdr + bytes([(0x80 if s else 0) | (0x40 if e else 0) | t]) + body[off:off + size])
    else:
        indicator = (nal[0] & 0xE0) | 28
        t = nal[0] & 0x1F
        body, size = nal[1:], mtu - 2
        for off in range(0, len(body), size):
            s, e = off == 0, off + size >= len(body)
            out.append(bytes([indicator, (0x80 if s else 0) | (0x40 if e else 0) | t]) + body[off:off + size])
    return out


class RtpStream:
    """Sequence numbers, SSRC and counters of one outgoing RTP stream."""

    def __init__(self, ssrc: int, seq: int = 0):
        self.ssrc = ssrc
        self.seq = seq & 0xFFFF
        self.packets = 0
        self.octets = 0
        self.last_rtp_ts = 0
        self.last_wall = time.time()

    def packetise(self, payloads: list[bytes], rtp_ts: int) -> list[bytes]:
        out = []
        last = len(payloads) - 1
        for i, pl in enumerate(payloads):
            hdr = struct.pack("!BBHII", 0x80, (0x80 if i == last else 0) | PT, self.seq, rtp_ts & 0xFFFFFFFF, self.ssrc)
            self.seq = (self.seq + 1) & 0xFFFF
            out.append(hdr + pl)
            self.packets += 1
            self.octets += len(pl)
        self.last_rtp_ts, self.last_wall = rtp_ts & 0xFFFFFFFF, time.time()
        return out

    def sender_report(self) -> bytes:
        """RTCP SR (RFC 3550 6.4.1) with no report blocks."""
        now = time.time()
        ntp = now + NTP_EPOCH
        sec, frac = int(ntp), int((ntp % 1) * (1 << 32))
        rtp_now = (self.last_rtp_ts + int((now - self.last_wall) * 90000)) & 0xFFFFFFFF
        return struct.pack("!BBHIIIIII", 0x80, 200, 6, self.ssrc, sec, frac, rtp_now, self.packets, self.octets & 0xFFFFFFFF)

    def bye(self) -> bytes:
        return struct.pack("!BBHI", 0x81, 203, 1, self.ssrc)


def access_unit_payloads(data: bytes, codec: str) -> list[bytes]:
    """All RTP payloads of one encoded access unit (Annex-B), AUD and SEI dropped."""
    drop = {35, 39, 40} if codec == "hevc" else {9, 6}
    payloads = []
    for nal in split_nals(data):
        if nal_type(nal, codec) not in drop:
            payloads += fragment(nal, codec)
    return payloads


def sdp(codec: str, params: dict[str, bytes], *, session_name: str = "vidpipe", address: str = "0.0.0.0",
        port: int = 0, control: str | None = "trackID=0", width: int = 0, height: int = 0) -> str:
    b64 = {k: base64.b64encode(v).decode() for k, v in params.items()}
    lines = ["v=0", f"o=- {int(time.time())} 1 IN IP4 {address}", f"s={session_name}", f"c=IN IP4 {address}",
             "t=0 0", "a=tool:vidpipe"]
    if control:
        lines.append("a=control:*")
    lines.append(f"m=video {port} RTP/AVP {PT}")
    if codec == "hevc":
        lines.append(f"a=rtpmap:{PT} H265/90000")
        fmtp = ";".join(f"sprop-{k}={b64[k]}" for k in ("vps", "sps", "pps") if k in b64)
    else:
        lines.append(f"a=rtpmap:{PT} H264/90000")
        prof = params.get("sps", b"\x00\x42\x00\x1e")[1:4].hex()
        fmtp = f"packetization-mode=1;profile-level-id={prof}"
        if "sps" in b64 and "pps" in b64:
            fmtp += f";sprop-parameter-sets={b64['sps']},{b64['pps']}"
    lines.append(f"a=fmtp:{PT} {fmtp}")
    if width and height:
        lines.append(f"a=framesize:{PT} {width}-{height}")
    if control:
        lines.append(f"a=control:{control}")
    return "\r\n".join(lines) + "\r\n"
