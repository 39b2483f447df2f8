#!/usr/bin/env bash
# Sets everything up (test extras, ffmpeg, npm, default assets), then runs the whole test suite.
# Extra arguments go to pytest (e.g. -k parser, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
