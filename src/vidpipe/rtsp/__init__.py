"""vidpipe's own RTSP server (RFC 2326 / 7826) with RTP packetisation of H.264 (RFC 6184) and
H.265 (RFC 7798), and plain RTP/UDP output with an SDP file."""
from .server import Mount, RtspServer, get_server, release_server

__all__ = ["Mount", "RtspServer", "get_server", "release_server"]
