"""The three ways to build a pipeline give the same result; bad descriptions fail clearly."""
import pytest

import vidpipe
from vidpipe.config.pipeline_yaml import load_pipeline_yaml
from vidpipe.errors import ConfigError, LinkError

from conftest import decode_all


def boxes_from(p, name):
    got = []
    p[name].src_pad.add_probe(lambda pad, b: got.extend(
        sorted((o.class_id, tuple(round(v) for v in o.bbox.as_xyxy())) for o in f.objects) for f in b.frames))
    return got


def test_deepstream_style_launch_line(clip, detector_config, tmp_path):
    out = tmp_path / "ds.mp4"
    p = vidpipe.parse_launch(
        f"filesrc location={clip[0]} ! h264parse ! nvv4l2decoder ! m.sink_0 "
        f"nvstreammux name=m batch-size=1 width={320} height={240} batched-push-timeout=40000 ! "
        f"nvinfer name=pgie config-file-path={detector_config} ! nvvideoconvert ! "
        f"'video/x-raw(memory:NVMM), format=RGBA' ! nvdsosd ! nvv4l2h264enc bitrate=2000000 ! h264parse ! "
        f"qtmux ! filesink location={out}")
    assert p["m"].batch_size == 1 and p["m"].batched_push_timeout == 40000
    got = boxes_from(p, "pgie")
    p.run()
    assert len(got) == len(clip[1]) and all(len(g) == 3 for g in got)
    assert len(decode_all(str(out))) == len(clip[1])


def test_launch_python_and_yaml_agree(clip, detector_config, tmp_path):
    launch = vidpipe.parse_launch(f"urisrc uri={clip[0]} ! streammux ! infer name=pgie "
                                  f"config-file-path={detector_config} ! fakesink")
    a = boxes_from(launch, "pgie")
    launch.run()

    py = vidpipe.Pipeline()
    src = vidpipe.make_element("urisrc", uri=clip[0])
    mux = vidpipe.make_element("streammux")
    inf = vidpipe.make_element("infer", "pgie", config_file_path=detector_config)
    py.link(src, mux, inf, vidpipe.make_element("fakesink"))
    b = boxes_from(py, "pgie")
    py.run()

    y = tmp_path / "p.yaml"
    y.write_text(f"""elements:
  - {{factory: urisrc, name: src, uri: {clip[0]}}}
  - {{factory: streammux, name: mux, batch-size: 1}}
  - {{factory: infer, name: pgie, config-file-path: {detector_config}}}
  - {{factory: fakesink, name: out}}
links:
  - src -> mux.sink_0
  - mux -> pgie
  - pgie -> out
""")
    yp = load_pipeline_yaml(str(y))
    c = boxes_from(yp, "pgie")
    yp.run()
    assert a == b == c and len(a) == len(clip[1])


def test_yaml_errors_name_file_line_key(tmp_path):
    y = tmp_path / "bad.yaml"
    y.write_text("elements:\n  - factory: streammux\n    batch-size: nope\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: batch-size: .*expects int"):
        load_pipeline_yaml(str(y))
    y.write_text("elements:\n  - factory: fakesink\nlinkz: []\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: linkz: unknown key"):
        load_pipeline_yaml(str(y))
    y.write_text("elements:\n  - factory: nosuch\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: factory: no element named 'nosuch'"):
        load_pipeline_yaml(str(y))


@pytest.mark.parametrize("desc,match", [
    ("urisrc uri=a.mp4 !", "ends with '!'"),
    ("! fakesink", "nothing before it"),
    ("urisrc uri=a.mp4 ! x.sink_0", "reference 'x.' names no element"),
    ("urisrc uri=a.mp4", "is not linked"),
])
def test_bad_launch_descriptions(desc, match):
    with pytest.raises(LinkError, match=match):
        vidpipe.parse_launch(desc).start()


def test_inspect_lists_elements_and_properties(capsys):
    from vidpipe.cli import main
    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    for name in ("urisrc", "streammux", "infer", "osd", "encoder", "filesink", "fakesink", "appsink"):
        assert f"  {name} " in out
    assert "nvstreammux" in out and "nvinfer" in out
    assert main(["inspect", "nvstreammux"]) == 0
    out = capsys.readouterr().out
    assert "batched-push-timeout" in out and "sink_%u (request)" in out and "default=-1" in out


def test_cli_launch_runs(clip, detector_config, tmp_path):
    from vidpipe.cli import main
    out = tmp_path / "l.mp4"
    rc = main(["-q", "launch", f"urisrc uri={clip[0]} ! streammux ! infer config-file-path={detector_config} "
               f"! osd ! filesink location={out}"])
    assert rc == 0 and len(decode_all(str(out))) == len(clip[1])


def test_properties_via_set_get_and_kebab(detector_config):
    mux = vidpipe.make_element("streammux")
    mux.set_property("batched-push-timeout", "40000")
    mux.set_property("live_source", "true")
    assert mux.get_property("batched_push_timeout") == 40000 and mux.live_source is True
    mux.batch_size = "4"
    assert mux.get_property("batch-size") == 4
