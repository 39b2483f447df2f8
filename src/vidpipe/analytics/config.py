"""nvdsanalytics configuration: DeepStream's config_nvdsanalytics.txt read unchanged, or the same
groups and keys in YAML.

    [property]                      enable, config-width, config-height, osd-mode, display-font-size
                                    (vidpipe: anchor, forget-after-ms)
    [roi-filtering-stream-N]        enable, roi-NAME=x1;y1;x2;y2;..., inverse-roi, class-id
    [overcrowding-stream-N]         enable, roi-NAME=..., object-threshold, time-threshold (ms), class-id
    [line-crossing-stream-N]        enable, line-crossing-NAME=dx1;dy1;dx2;dy2;x1;y1;x2;y2, class-id,
                                    extended, mode=loose|balanced|strict (vidpipe: count-every-crossing)
    [direction-detection-stream-N]  enable, direction-NAME=x1;y1;x2;y2, class-id, mode

A group is on unless it says enable=0. Coordinates are in a config-width x config-height frame and are scaled to each stream's frame
size. class-id lists the classes a group works on (semicolons; -1 or absent: all). In YAML the
top-level keys are the group names and each holds the same keys; numbers may be given as lists.
Every error names the file, the line and the key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config.ini import Entry, read_groups
from ..errors import ConfigError

MODES = ("loose", "balanced", "strict")
ANCHORS = ("bottom-center", "center", "top-center", "bottom-left", "bottom-right", "top-left", "top-right")


@dataclass
class Roi:
    name: str
    points: list[tuple[float, float]]


@dataclass
class RoiFilter:
    rois: list[Roi] = field(default_factory=list)
    inverse: bool = False
    class_ids: list[int] = field(default_factory=list)  # empty: every class


@dataclass
class Overcrowding:
    rois: list[Roi] = field(default_factory=list)
    object_threshold: int = 1
    time_threshold_ms: int = 0
    class_ids: list[int] = field(default_factory=list)


@dataclass
class CrossingLine:
    name: str
    direction: tuple[tuple[float, float], tuple[float, float]]  # counted when moving from the first point's side
    line: tuple[tuple[float, float], tuple[float, float]]


@dataclass
class LineCrossing:
    lines: list[CrossingLine] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    extended: bool = False
    mode: str = "balanced"
    count_every_crossing: bool = False


@dataclass
class Direction:
    name: str
    vector: tuple[tuple[float, float], tuple[float, float]]


@dataclass
class DirectionDetection:
    directions: list[Direction] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    mode: str = "balanced"


@dataclass
class StreamRules:
    roi: RoiFilter | None = None
    overcrowding: Overcrowding | None = None
    lines: LineCrossing | None = None
    directions: DirectionDetection | None = None


@dataclass
class AnalyticsConfig:
    enable: bool = True
    config_width: int = 1920
    config_height: int = 1080
    osd_mode: int = 2
    display_font_size: int = 12
    anchor: str = "bottom-center"
    forget_after_ms: int = 8000
    streams: dict[int, StreamRules] = field(default_factory=dict)
    source: str = ""

    def rules(self, stream: int) -> StreamRules:
        return self.streams.get(stream) or StreamRules()


_GROUP = re.compile(r"^(roi-filtering|overcrowding|line-crossing|direction-detection)-stream-(\d+)$")


class _Reader:
    def __init__(self, path: str):
        self.path = path

    def fail(self, e: Entry, msg: str) -> ConfigError:
        return ConfigError(msg, file=self.path, line=e.line, key=e.raw_key or e.key)

    def int_(self, e: Entry, lo: int | None = None, hi: int | None = None) -> int:
        try:
            v = int(str(e.value).strip())
        except ValueError:
            raise self.fail(e, f"expected a whole number, got {e.value!r}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(e, f"{v} is out of range ({lo}..{hi if hi is not None else ''})")
        return v

    def bool_(self, e: Entry) -> bool:
        v = str(e.value).strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise self.fail(e, f"expected 0 or 1, got {e.value!r}")

    def numbers(self, e: Entry, count: int | None = None, *, min_pairs: int = 0) -> list[float]:
        parts = [p.strip() for p in str(e.value).split(";") if p.strip()]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise self.fail(e, f"expected numbers separated by ';', got {e.value!r}") from None
        if count is not None and len(vals) != count:
            raise self.fail(e, f"expected {count} numbers, got {len(vals)}")
        if count is None and (len(vals) % 2 or len(vals) < 2 * min_pairs):
            raise self.fail(e, f"expected at least {min_pairs} x;y points (an even count of numbers), got {len(vals)} numbers")
        return vals

    def classes(self, e: Entry) -> list[int]:
        parts = [p.strip() for p in str(e.value).split(";") if p.strip()]
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise self.fail(e, f"expected class ids separated by ';', got {e.value!r}") from None
        return [] if not ids or -1 in ids else ids

    def mode(self, e: Entry) -> str:
        v = str(e.value).strip().lower()
        if v not in MODES:
            raise self.fail(e, f"mode must be one of {', '.join(MODES)}, got {e.value!r}")
        return v


def _pairs(v: list[float]) -> list[tuple[float, float]]:
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)]


def parse_entries(entries: list[Entry], path: str) -> AnalyticsConfig:
    r = _Reader(path)
    cfg = AnalyticsConfig(source=path)
    groups: dict[str, tuple[Any, bool]] = {}  # section -> (rules object, enabled)
    enabled: dict[str, bool] = {}
    for e in entries:
        sec, key = e.section, e.key
        if sec == "property":
            if key == "enable":
                cfg.enable = r.bool_(e)
            elif key == "config-width":
                cfg.config_width = r.int_(e, 1)
            elif key == "config-height":
                cfg.config_height = r.int_(e, 1)
            elif key == "osd-mode":
                cfg.osd_mode = r.int_(e, 0, 2)
            elif key == "display-font-size":
                cfg.display_font_size = r.int_(e, 1, 200)
            elif key == "anchor":
                v = str(e.value).strip().lower()
                if v not in ANCHORS:
                    raise r.fail(e, f"anchor must be one of {', '.join(ANCHORS)}, got {e.value!r}")
                cfg.anchor = v
            elif key == "forget-after-ms":
                cfg.forget_after_ms = r.int_(e, 0)
            else:
                raise r.fail(e, "unknown key in [property] (known: enable, config-width, config-height, osd-mode, "
                                "display-font-size, anchor, forget-after-ms)")
            continue
        m = _GROUP.match(sec)
        if m is None:
            raise ConfigError(f"unknown group [{sec}] (expected [property], [roi-filtering-stream-N], "
                              "[overcrowding-stream-N], [line-crossing-stream-N], [direction-detection-stream-N])",
                              file=path, line=e.section_line or e.line)
        kind, stream = m.group(1), int(m.group(2))
        rules = cfg.streams.setdefault(stream, StreamRules())
        name = e.raw_key or key
        if key == "enable":
            enabled[sec] = r.bool_(e)
            continue
        if kind == "roi-filtering":
            g = rules.roi = rules.roi or RoiFilter()
            if key.startswith("roi-"):
                g.rois.append(Roi(name[4:], _pairs(r.numbers(e, min_pairs=3))))
            elif key == "inverse-roi":
                g.inverse = r.bool_(e)
            elif key == "class-id":
                g.class_ids = r.classes(e)
            else:
                raise r.fail(e, f"unknown key in [{sec}] (known: enable, roi-NAME, inverse-roi, class-id)")
        elif kind == "overcrowding":
            o = rules.overcrowding = rules.overcrowding or Overcrowding()
            if key.startswith("roi-"):
                o.rois.append(Roi(name[4:], _pairs(r.numbers(e, min_pairs=3))))
            elif key == "object-threshold":
                o.object_threshold = r.int_(e, 1)
            elif key == "time-threshold":
                o.time_threshold_ms = r.int_(e, 0)
            elif key == "class-id":
                o.class_ids = r.classes(e)
            else:
                raise r.fail(e, f"unknown key in [{sec}] (known: enable, roi-NAME, object-threshold, "
                                "time-threshold, class-id)")
        elif kind == "line-crossing":
            lc = rules.lines = rules.lines or LineCrossing()
            if key.startswith("line-crossing-"):
                v = r.numbers(e, 8)
                p = _pairs(v)
                if p[2] == p[3]:
                    raise r.fail(e, "the line's two points are the same")
                if p[0] == p[1]:
                    raise r.fail(e, "the direction's two points are the same")
                lc.lines.append(CrossingLine(name[len("line-crossing-"):], (p[0], p[1]), (p[2], p[3])))
            elif key == "class-id":
                lc.class_ids = r.classes(e)
            elif key == "extended":
                lc.extended = r.bool_(e)
            elif key == "mode":
                lc.mode = r.mode(e)
            elif key == "count-every-crossing":
                lc.count_every_crossing = r.bool_(e)
            else:
                raise r.fail(e, f"unknown key in [{sec}] (known: enable, line-crossing-NAME, class-id, extended, "
                                "mode, count-every-crossing)")
        else:
            d = rules.directions = rules.directions or DirectionDetection()
            if key.startswith("direction-"):
                p = _pairs(r.numbers(e, 4))
                if p[0] == p[1]:
                    raise r.fail(e, "the direction's two points are the same")
                d.directions.append(Direction(name[len("direction-"):], (p[0], p[1])))
            elif key == "class-id":
                d.class_ids = r.classes(e)
            elif key == "mode":
                d.mode = r.mode(e)
            else:
                raise r.fail(e, f"unknown key in [{sec}] (known: enable, direction-NAME, class-id, mode)")
        groups[sec] = (stream, kind)
    for sec, (stream, kind) in groups.items():  # enable=0 turns a group off (absent: on)
        if not enabled.get(sec, True):
            rules = cfg.streams[stream]
            attr = {"roi-filtering": "roi", "overcrowding": "overcrowding", "line-crossing": "lines",
                    "direction-detection": "directions"}[kind]
            setattr(rules, attr, None)
    return cfg


def load_analytics_config(path: str) -> AnalyticsConfig:
    """Reads an nvdsanalytics config (.txt INI, or .yml/.yaml with the same groups and keys)."""
    return parse_entries(read_groups(path, "analytics config"), path)
