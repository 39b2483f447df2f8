#!/usr/bin/env bash
# The GPU check and benchmark, in one call of the device machine (see benchmarks/README.md):
# installs the carried wheels, runs the GPU tests (pytest -m "needs_cuda or needs_torch"), then
# `vidpipe bench --device cuda`, writing logs and JSON under $OUT.
#
# Carried (git-ignored, made here):
#   .whl/      pynvvideocodec (cp312) and onnx2torch wheels (pip download, see the device README)
#   .devdata/  bench1080.h264  (vidpipe bench --make-clip .devdata/bench1080.h264 --clip-source pets --clip-frames 300)
#              bench1080.h265  (the same with --clip-codec h265; NVDEC-only column)
#              squares.h264    (vidpipe.synthetic.make_clip, 320x240, 30 frames)
#              h264/           the shared clips as H.264, 8 frames each (tests/test_batch_invariance.py:
#                              make_h264_media(".devdata/h264"))
#              shared/models/{nanodet_m416.onnx,coco80.txt}, shared/media/bikes.mp4 (from ../shared)
set -u
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
# /tmp/site-extra: PyAV (x264 for the full-pipeline row), installed by an earlier call on the same
# warm machine, since the carry limit leaves no room for its wheel beside the others (benchmarks/README.md)
export PYTHONPATH=/tmp/site:/tmp/site-extra:$PWD/src PYTHONUNBUFFERED=1
export VIDPIPE_SHARED=$PWD/.devdata/shared VIDPIPE_TEST_H264=$PWD/.devdata/squares.h264 \
       VIDPIPE_TEST_H264_DIR=$PWD/.devdata/h264
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  timeout "${TEST_TIMEOUT:-170}" python3 -m pytest -q -p no:cacheprovider -m "needs_cuda or needs_torch" -rs \
      tests/test_gpu.py tests/test_batch_invariance.py --junitxml="$OUT/junit.xml" 2>&1 | tee "$OUT/tests.log"
fi
timeout "${BENCH_TIMEOUT:-400}" python3 -m vidpipe.cli bench --device cuda --clip .devdata/bench1080.h264 \
    --model .devdata/shared/models/nanodet_m416.onnx --profile $( [ -f .devdata/bench1080.h265 ] && echo --clip-h265 .devdata/bench1080.h265 ) ${BENCH_ARGS:-} --json "$OUT/gpu_bench.json" \
    2>&1 | tee "$OUT/bench.log"
