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
