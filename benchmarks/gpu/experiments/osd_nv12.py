"""Experiment: the full GPU row with the osd drawing NV12 frames in NV12 vs converting them to RGB."""
import sys, os, json, tempfile
sys.path.insert(0, "src")


def main():
    from vidpipe.bench.gpu import vidpipe_run, write_ini
    from vidpipe.gpu import draw
    clip = ".devdata/bench1080.h264"
    model = os.path.abspath(".devdata/shared/models/nanodet_m416.onnx")
    ini = write_ini(tempfile.mktemp(suffix=".txt"), model, 16)
    out = {}
    for rep in range(2):
        for nv12 in (True, False):
            draw.DRAW_NV12 = nv12
            r = vidpipe_run(clip, 16, 200, ini, full=True, sample=(rep == 1), cpu=True)
            key = "nv12" if nv12 else "rgb"
            out.setdefault(key, []).append(round(r["fps"], 1))
            print(key, round(r["fps"], 1), "FPS", {k: round(v["busy_s"], 2) for k, v in r["element_stats"].items()
                                                  if k in ("osd", "tiler", "encoder", "infer", "tracker")},
                  r.get("cores"), flush=True)
            if rep == 1:
                for k, v in r["threads"].items():
                    if "osd" in k or "tiler" in k:
                        print("   ", k, v, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
