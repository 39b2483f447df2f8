"""Analytics like DeepStream's nvdsanalytics: ROI filtering, line crossing, direction and
overcrowding on a batch's object table. See docs/analytics.md."""
from .config import AnalyticsConfig, load_analytics_config
from .engine import AnalyticsEngine, AnalyticsFrameMeta, AnalyticsObjInfo

__all__ = ["AnalyticsConfig", "AnalyticsEngine", "AnalyticsFrameMeta", "AnalyticsObjInfo", "load_analytics_config"]
