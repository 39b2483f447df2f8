"""analytics: ROI filtering, line crossing, direction and overcrowding (nvdsanalytics' role)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.element import Element
from ..core.meta import Arrow, Batch, Line, Text
from ..core.props import Prop
from ..core.registry import register
from .config import AnalyticsConfig, load_analytics_config
from .engine import AnalyticsEngine, AnalyticsFrameMeta

ROI_COLOR = (0, 200, 255)
OC_COLOR = (255, 80, 80)
LINE_COLOR = (255, 255, 0)
DIR_COLOR = (0, 255, 120)


@register("analytics", aliases={"nvdsanalytics": {}})
class Analytics(Element):
    """Per object: ROIs it is in, lines it crossed, its direction, overcrowded ROIs (extra columns
    analytics_roi / analytics_lines / analytics_oc bit masks, analytics_direction); per frame:
    frame.meta.user_meta["analytics"] (AnalyticsFrameMeta, DeepStream's names too). Reads
    DeepStream's config_nvdsanalytics.txt or the same keys in YAML."""

    description = "ROI filtering, line crossing, direction, overcrowding (nvdsanalytics)"
    config_file = Prop(str, "", "config_nvdsanalytics.txt (DeepStream's format) or YAML with the same keys")
    config = Prop(object, None, "an AnalyticsConfig (instead of a file)", nullable=True)
    enable = Prop(bool, True, "off: batches pass untouched")
    unique_id = Prop(int, 0, "id stamped on the results (DeepStream's unique-id)", minimum=0)
    osd_mode = Prop(int, -1, "0 draw nothing, 1 ROIs/lines/labels, 2 plus counts (-1: from the config)",
                    choices=[-1, 0, 1, 2])

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self.engine: AnalyticsEngine | None = None
        self.cfg: AnalyticsConfig | None = None

    def start(self) -> None:
        if self.config is not None:
            self.cfg = self.config if isinstance(self.config, AnalyticsConfig) else load_analytics_config(str(self.config))
        elif self.config_file:
            self.cfg = load_analytics_config(self.config_file)
        else:
            self.cfg = AnalyticsConfig()
        self.engine = AnalyticsEngine(self.cfg, self.unique_id)

    def process(self, batch: Batch) -> Batch:
        cfg, engine = self.cfg, self.engine
        assert cfg is not None and engine is not None
        if not self.enable or not cfg.enable:
            return batch
        metas = engine.process(batch)
        mode = cfg.osd_mode if self.osd_mode < 0 else self.osd_mode
        if mode:
            for f, m in zip(batch.frames, metas):
                self._draw(f, m, mode)
        return batch

    def _draw(self, f: Any, m: AnalyticsFrameMeta, mode: int) -> None:
        """ROIs, lines with their direction arrows and names; with mode 2 the counts."""
        cfg, engine = self.cfg, self.engine
        assert cfg is not None and engine is not None
        g = engine._geos[engine._gid(f.source_id, int(f.width), int(f.height))]
        d = f.meta.display_meta
        scale = cfg.display_font_size / 24.0
        for edges, names, used, color, kind in ((g.roi_edges, g.roi_names, g.roi_used, ROI_COLOR, "roi"),
                                                (g.oc_edges, g.oc_names, g.oc_used, OC_COLOR, "oc")):
            for j, name in enumerate(names):
                if not used[j]:
                    continue
                e = edges[j][np.any(edges[j, :, :2] != edges[j, :, 2:], 1)]
                for x1, y1, x2, y2 in e.tolist():
                    d.lines.append(Line(x1, y1, x2, y2, color, 2))
                label = name
                if mode == 2:
                    label += f": {m.obj_in_roi_cnt.get(name, 0)}" if kind == "roi" else \
                        f": {m.oc_count.get(name, 0)}{' OVERCROWDED' if m.oc_status.get(name) else ''}"
                d.texts.append(Text(label, float(e[:, 0].min()), float(e[:, 1].min()) + 14, scale, color))
        for j, name in enumerate(g.line_names):
            (x1, y1), (x2, y2) = g.l1[j].tolist(), g.l2[j].tolist()
            d.lines.append(Line(x1, y1, x2, y2, LINE_COLOR, 3))
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            dx, dy = (g.ldir[j] * 40 * g.scale).tolist()
            d.arrows.append(Arrow(mx, my, mx + dx, my + dy, LINE_COLOR, 2))
            label = name
            if mode == 2:
                label += f": {m.obj_lc_cum_cnt.get(name, 0)} in, {m.lc_cum_against.get(name, 0)} out"
            lx, ly = (x1, y1) if x1 <= x2 else (x2, y2)  # by the line's left end, kept inside the frame;
            w, h = float(f.width), float(f.height)     # lines drawn on the same place get one row each
            d.texts.append(Text(label, min(max(lx + 4, 4.0), max(w - 220, 4.0)),
                                min(max(ly - 6 - 16 * j * scale * 2, 14.0), h - 4), scale, LINE_COLOR))
        if mode == 2 and g.direction_names:
            for o in f.objects:
                k = int(o.data("analytics_direction"))
                if k:
                    b = o.bbox
                    d.texts.append(Text(g.direction_names[k - 1], b.left, b.top + b.height + 14, scale, DIR_COLOR,
                                        None))
