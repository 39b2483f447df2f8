#!/usr/bin/env bash
# Run on the device machine (the `device` tool), carrying .whl (pynvvideocodec, onnx2torch, onnx
# wheels for cp312) and .devdata (clip1080.h264 made by vidpipe.synthetic, nanodet_m416.onnx):
#   bash benchmarks/gpu/probe.sh
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import cv2, onnxruntime, yaml, scipy; print('cv2', cv2.__version__, 'ort', onnxruntime.__version__)" 2>&1
PYTHONUNBUFFERED=1 python3 benchmarks/gpu/probe.py .devdata 2>&1 | tee "${OUT:-/tmp}/probe.log"
