"""What the experiments read from the carried `.devdata` (see benchmarks/gpu/run.sh): the bench
clip, the model, an infer config for a batch size, and the MODE:STREAMS... settings most take."""
import argparse
import os
import tempfile

CLIP = os.path.abspath(".devdata/bench1080.h264")
MODEL = os.path.abspath(".devdata/shared/models/nanodet_m416.onnx")
_configs = tempfile.mkdtemp(prefix="vidpipe-experiment-")


def ini(batch: int, threshold: float = 0.4) -> str:
    """An infer config file for MODEL at `batch` (the GPU bench's)."""
    from vidpipe.bench.gpu import write_ini
    return write_ini(os.path.join(_configs, f"b{batch}-{threshold:g}.txt"), MODEL, batch, threshold)


def settings(doc: str) -> argparse.Namespace:
    """The command line: settings (one or more) and --frames (per stream, default 300)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="+")
    ap.add_argument("--frames", type=int, default=300)
    return ap.parse_args()
