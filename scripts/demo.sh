#!/usr/bin/env bash
# Sets everything up, then runs the main job on the embedded defaults:
# the default detector on the default clip -> vidpipe-out/bikes.mp4 and vidpipe-out/bikes.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vidpipe run "$@"
