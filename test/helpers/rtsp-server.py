# A camera stand-in for tests: serves a JPEG, looped at FPS frames a second, as H.264 over
# RTSP on rtsp://127.0.0.1:PORT/PATH (GStreamer's RTSP server, the same kind of peer a real
# camera is). Run with /usr/bin/python3 (Debian's python3-gi). Exits when stdin closes, so
# a test runner that dies does not leave it behind.
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

photo, port, fps, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
Gst.init(None)

server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# identity sync=true paces the file reads in real time, so the stream behaves like a live
# camera (no read-ahead); a keyframe every 2 s, and SPS/PPS repeated, like most cameras.
location = photo.replace('\\', '\\\\').replace('"', '\\"')
factory.set_launch(
    f'( multifilesrc location="{location}" loop=true caps="image/jpeg,framerate={fps}/1" ! jpegdec '
    f'! identity sync=true ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={2 * fps} '
    f'! rtph264pay name=pay0 pt=96 config-interval=1 )'
)
# Not shared: every client gets its own pipeline starting at a keyframe (fast test start-up).
factory.set_shared(False)
server.get_mount_points().add_factory(path, factory)
if server.attach(None) == 0:
    print(f'ERROR cannot listen on 127.0.0.1:{port}', flush=True)
    sys.exit(2)

loop = GLib.MainLoop()
GLib.io_add_watch(sys.stdin.fileno(), GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, lambda *_: loop.quit() or False)
print(f'READY {port}', flush=True)
loop.run()
