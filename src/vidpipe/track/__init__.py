"""Multi-object tracking: IOU, SORT (Kalman) and ByteTrack, vectorised over objects and streams."""
from __future__ import annotations

from dataclasses import replace

from .core import Result, TrackerCore, TrackerParams, TrackInfo

PRESETS: dict[str, TrackerParams] = {
    # match on IoU with the last box; no motion model
    "iou": TrackerParams(motion="none", low_thresh=0.0, new_track_thresh=0.0, match_iou=0.3, min_hits=1, max_age=5),
    # Kalman prediction + one IoU association (Bewley et al. 2016), confirmed after 3 hits
    "sort": TrackerParams(motion="kalman", low_thresh=0.0, new_track_thresh=0.0, match_iou=0.3, min_hits=3, max_age=30),
    # Kalman + two-stage association with low-score detections (Zhang et al. 2022)
    "bytetrack": TrackerParams(motion="kalman", two_stage=True, high_thresh=0.5, low_thresh=0.1,
                               new_track_thresh=0.6, match_iou=0.2, second_match_iou=0.5, min_hits=2, max_age=30),
}


def make_params(algorithm: str, **overrides) -> TrackerParams:
    if algorithm not in PRESETS:
        raise ValueError(f"unknown tracker '{algorithm}'; allowed: {', '.join(PRESETS)}")
    return replace(PRESETS[algorithm], **overrides)


__all__ = ["PRESETS", "Result", "TrackInfo", "TrackerCore", "TrackerParams", "make_params"]
