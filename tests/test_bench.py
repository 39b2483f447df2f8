"""The benchmarks' output checks: a fast wrong answer must fail the run."""
from vidpipe.bench import finish, matched_share, same_detections, same_objects


def test_matched_share_counts_objects_with_a_counterpart_on_both_sides():
    a = {(0, 0): [(1, 0, 0, 10, 10), (2, 50, 50, 60, 60)], (0, 1): [(1, 0, 0, 10, 10)]}
    assert matched_share(a, a) == 1.0
    b = {(0, 0): [(1, 1, 1, 11, 11)], (0, 1): [(3, 0, 0, 10, 10)]}  # one moved a pixel, one other class
    assert matched_share(a, b) == 2 / 5
    assert matched_share({}, {}) == 1.0


def test_rows_that_differ_fail_the_suite(capsys):
    wrong = []
    same_objects("ok", 100, 101, wrong)
    assert wrong == [] and finish(wrong) == 0
    same_objects("bad", 100, 110, wrong)
    a = {(0, 0): [(1, 0, 0, 10, 10)]}
    assert same_detections("lost", a, {}, wrong) == 0.0
    assert len(wrong) == 2 and finish(wrong) == 1
    assert "FAILED" in capsys.readouterr().out


def test_analytics_suite_agrees_with_supervision(capsys):
    """A short run of the analytics suite: both sides count the same, and the run passes."""
    pytest = __import__("pytest")
    pytest.importorskip("supervision")
    import argparse

    from vidpipe.bench.analytics import main_analytics
    assert main_analytics(argparse.Namespace(streams="2", objects=10, frames=60)) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert row[0] == "2" and int(row[4]) > 0 and int(row[5]) > 0   # crossings and ROI hits happened


def test_the_gpu_benchs_two_probes_read_the_same_values():
    """The probe-cost runs read every object's box, label and id through object views and from
    columns: the same values in the same order, removed objects left out of both."""
    import numpy as np

    from vidpipe import Batch, Frame
    from vidpipe.bench.gpu import object_rows, object_rows_from_columns
    frames = [Frame(np.zeros((90, 160, 3), np.uint8), i) for i in range(3)]
    frames[0].objects.add(xyxy=[[1, 2, 11, 22], [5, 5, 6, 9]], class_id=[0, 1], label=["a", "b"], object_id=[4, 7])
    frames[2].objects.add(xyxy=[[10.5, 0, 20, 30]], class_id=2, label="c")
    b = Batch(frames)
    b.frames[0].objects.remove(b.frames[0].objects[b.frames[0].objects.class_id == 1])
    b.frames[1].objects.add(xyxy=[[0, 0, 4, 4]], class_id=3, label="d", object_id=9)
    rows = object_rows(b)
    assert rows == object_rows_from_columns(b)
    assert rows == [(1.0, 2.0, 10.0, 20.0, "a", 4), (0.0, 0.0, 4.0, 4.0, "d", 9), (10.5, 0.0, 9.5, 30.0, "c", -1)]
