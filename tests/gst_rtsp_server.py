"""An RTSP server that is not vidpipe's: GStreamer's gst-rtsp-server (Debian python3-gi +
gir1.2-gst-rtsp-server-1.0), run with the system Python. Usage: gst_rtsp_server.py PORT MOUNT."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, mount = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! "
                   "x264enc tune=zerolatency key-int-max=25 ! rtph264pay name=pay0 pt=96 )")
factory.set_shared(True)
server.get_mount_points().add_factory(mount, factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
