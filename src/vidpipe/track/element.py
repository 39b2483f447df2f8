"""tracker: gives objects stable ids across frames, per stream (nvtracker's role)."""
from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np

from ..config.yamlfile import load_yaml
from ..core.element import Element
from ..core.events import Event, StreamEOS
from ..core.meta import Batch
from ..core.props import Prop
from ..core.registry import register
from ..errors import ConfigError
from . import PRESETS, TrackerCore, TrackInfo, make_params

log = logging.getLogger("vidpipe")

# DeepStream NvMultiObjectTracker keys that map onto ours (others are accepted and ignored)
DS_KEYS = {"minDetectorConfidence": "low_thresh", "probationAge": "min_hits", "maxShadowTrackingAge": "max_age",
           "minMatchingScore4Overall": "match_iou", "minMatchingScore4Iou": "match_iou",
           "minIouDiff4NewTarget": None, "checkClassMatch": "match_class", "earlyTerminationAge": None,
           "minTrackerConfidence": None, "maxTargetsPerStream": None, "enableBboxUnClipping": None,
           "matchingScoreWeight4Iou": None, "trackerType": None, "stateEstimatorType": None,
           "dataAssociatorType": None, "outputShadowTracks": "output_shadow_tracks"}
OWN_KEYS = {"algorithm", "motion", "two_stage", "high_thresh", "low_thresh", "new_track_thresh", "match_iou",
            "second_match_iou", "min_hits", "max_age", "match_class", "output_shadow_tracks"}
SHADOW_CONFIDENCE = -0.1  # like DeepStream: objects the tracker reports on frames the detector skipped


def load_tracker_config(path: str) -> dict[str, Any]:
    """vidpipe keys (flat) or DeepStream's sections (BaseConfig, TargetManagement, ...)."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=path)
    out: dict[str, Any] = {}

    def walk(d: dict) -> None:
        lines = getattr(d, "lines", {})
        for k, v in d.items():
            key = str(k)
            if isinstance(v, dict):
                walk(v)
                continue
            norm = key.replace("-", "_")
            if norm in OWN_KEYS:
                out[norm] = v
            elif key in DS_KEYS:
                if DS_KEYS[key]:
                    out[DS_KEYS[key]] = bool(v) if key in ("checkClassMatch", "outputShadowTracks") else v
            else:
                log.warning("%s:%s: unknown tracker key '%s' ignored", path, lines.get(k), key)
    walk(data)
    if out.get("algorithm", "iou") not in PRESETS:
        raise ConfigError(f"unknown algorithm; allowed: {', '.join(PRESETS)}", file=path, key="algorithm")
    return out


@register("tracker", aliases={"nvtracker": {}})
class Tracker(Element):
    """Assigns `object_id`, `tracker_confidence` and `track_age` to detected objects. Ids are
    unique across streams. On frames where the detector did not run (infer interval > 0) it
    adds the tracked objects at their predicted place (confidence -0.1). Terminated tracks go to
    `batch.user_meta["terminated_tracks"]`; tracks confirmed after a probation period report the
    frames they were seen in before confirmation in `batch.user_meta["past_frame_objects"]`.
    With output-shadow-tracks, confirmed tracks the detector missed in a frame go to that frame's
    `user_meta["shadow_tracks"]`."""

    description = "multi-object tracker: iou, sort, bytetrack"
    algorithm = Prop(str, "iou", "tracking algorithm", choices=list(PRESETS))
    ll_config_file = Prop(str, "", "tracker YAML (vidpipe keys, or DeepStream tracker config keys)")
    min_hits = Prop(int, -1, "matches before a track gets an id (-1: the algorithm's default)", minimum=-1)
    max_age = Prop(int, -1, "frames a track survives without detection (-1: default)", minimum=-1)
    match_iou = Prop(float, -1.0, "IoU needed to match a detection (-1: default)")
    high_thresh = Prop(float, -1.0, "ByteTrack's first-stage score threshold (-1: default)")
    low_thresh = Prop(float, -1.0, "detections below are ignored (-1: default)")
    new_track_thresh = Prop(float, -1.0, "score needed to start a track (-1: default)")
    tracker_width = Prop(int, 0, "accepted for DeepStream compatibility (ignored)")
    tracker_height = Prop(int, 0, "accepted for DeepStream compatibility (ignored)")
    ll_lib_file = Prop(str, "", "accepted for DeepStream compatibility (ignored)")
    display_tracking_id = Prop(bool, True, "accepted for DeepStream compatibility (osd shows ids)")
    output_shadow_tracks = Prop(bool, False, "report confirmed tracks the detector missed in a frame in its "
                                "user_meta['shadow_tracks'] (DeepStream's outputShadowTracks; off by default as "
                                "there: in crowded scenes they are hundreds per batch)")
    unique_ids = Prop(bool, False, "ids unique across streams: the source id in the upper 32 bits (DeepStream's "
                      "useUniqueID); otherwise each stream counts from 0, whatever else shares its batches")

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self.core: TrackerCore | None = None
        self._labels: dict[tuple[int, int], str] = {}
        self._pending: list[TrackInfo] = []
        self._seen_detector: set[int] = set()

    def start(self) -> None:
        conf: dict[str, Any] = {}
        if self.ll_config_file:
            conf = load_tracker_config(self.ll_config_file)
        algo = conf.pop("algorithm", None) or self.algorithm
        shadows = bool(conf.pop("output_shadow_tracks", False)) or self.output_shadow_tracks
        for k in ("min_hits", "max_age", "match_iou", "high_thresh", "low_thresh", "new_track_thresh"):
            v = getattr(self, k)
            if v >= 0:
                conf[k] = v
        try:
            self.params = make_params(algo, **conf)
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e), file=self.ll_config_file or None) from None
        self.core = TrackerCore(self.params, unique_ids=self.unique_ids, report_missed=shadows)

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so they stay unique)."""
        if self.core is not None:
            self.core.reset()
        self._pending.clear()

    def handle_event(self, event: Event) -> None:
        if isinstance(event, StreamEOS) and self.core is not None:
            ended = self.core.drop_stream(event.source_id)
            for t in ended:
                self._labels.pop((t.source_id, t.object_id), None)
            self._pending += ended
        self.push(event)

    def finish(self) -> Iterable[Batch]:
        if self.core is not None:
            for key in np.unique(self.core.key).tolist():
                self._pending += self.core.drop_stream(int(key))
        if self._pending:
            return [Batch([], user_meta={"terminated_tracks": self._pending})]
        return []

    def process(self, batch: Batch) -> Batch:
        core = self.core
        assert core is not None
        frames = batch.frames
        rounds = batch.rounds()  # frames of one stream must be tracked in order
        terminated, past = self._pending, []
        self._pending = []
        objs = batch.objects
        table = batch.table
        fr, top = objs.frame, objs.parent_row < 0
        xyxy, conf, cls = objs.xyxy, objs.confidence, objs.class_id
        labels = table.cols["label"]
        seen = self._seen_detector
        for rnd in rounds:
            fs = [frames[i] for i in rnd]
            keys_l, nums_l = [f.source_id for f in fs], [f.frame_num for f in fs]
            ran_l = [bool(f.meta.inferred_by) for f in fs]
            seen.update(k for k, r in zip(keys_l, ran_l) if r)
            # frames the detector skipped count as detected until their stream has seen it run
            detected = np.array([r or k not in seen for k, r in zip(keys_l, ran_l)], bool)
            if len(rnd) == len(frames):  # the whole batch in one round: frame index = position
                sel = np.nonzero(top)[0]
                d_frame = fr[sel]
            else:
                pos = np.full(len(frames), -1, np.int64)
                pos[rnd] = np.arange(len(rnd))
                sel = np.nonzero((pos[fr] >= 0) & top)[0]
                d_frame = pos[fr[sel]]
            o = np.argsort(d_frame, kind="stable")  # frame by frame, each frame's objects in order
            sel, d_frame = sel[o], d_frame[o]
            keys = np.array(keys_l, np.int64)
            res = core.update(keys, np.array(nums_l, np.int64), detected,
                              d_frame, xyxy[sel].astype(np.float64), conf[sel].astype(np.float64),
                              cls[sel].astype(np.int64))
            table.cols["object_id"][sel] = res.object_id
            table.cols["tracker_confidence"][sel] = res.confidence
            table.cols["track_age"][sel] = res.age
            new = np.nonzero(res.new_id)[0]  # an id's label: its first detection's
            for r, key, oid in zip(sel[new].tolist(), keys[d_frame[new]].tolist(), res.object_id[new].tolist()):
                self._labels[(key, oid)] = labels[r]
            shadows = []  # tracks not matched on frames the detector skipped: objects, below
            ran = detected.tolist()
            reported: dict[int, list] = {}
            for sh in res.shadows:
                j = sh[0]
                if not ran[j]:
                    shadows.append(sh)
                    continue
                # the detector ran and missed it: report the track, add no object
                reported.setdefault(j, []).append(TrackInfo(keys_l[j], sh[1], sh[2], sh[5], -1, nums_l[j], sh[3]))
            for j, tracks in reported.items():
                fs[j].meta.user_meta.setdefault("shadow_tracks", []).extend(tracks)
            if shadows:  # the detector skipped these frames: tracked objects at their predicted place
                j = np.asarray([s[0] for s in shadows])
                batch.objects.add(frame=np.asarray(rnd)[j], xyxy=np.array([s[3] for s in shadows]),
                                  class_id=np.asarray([s[2] for s in shadows]), confidence=SHADOW_CONFIDENCE,
                                  object_id=np.asarray([s[1] for s in shadows]),
                                  tracker_confidence=np.asarray([s[4] for s in shadows]),
                                  track_age=np.asarray([s[5] for s in shadows]),
                                  label=[self._labels.get((int(keys[s[0]]), s[1]), str(s[2])) for s in shadows])
            terminated += res.terminated
            past += [t for t in res.confirmed if t.past]
            for t in res.terminated:
                self._labels.pop((t.source_id, t.object_id), None)
        if terminated:
            batch.user_meta["terminated_tracks"] = terminated
        if past:
            batch.user_meta["past_frame_objects"] = past
        return batch
