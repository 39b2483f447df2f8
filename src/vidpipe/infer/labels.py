"""Label files: one label per line, "id name" lines, or DeepStream classifier "a;b;c" lines."""
from __future__ import annotations

from ..errors import ConfigError


def load_labels(path: str) -> dict[int, str]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh.read().splitlines()]
    except FileNotFoundError:
        raise ConfigError("label file not found", file=path) from None
    lines = [ln for ln in lines if ln]
    if len(lines) == 1 and ";" in lines[0]:
        return dict(enumerate(p.strip() for p in lines[0].split(";")))
    parts = [ln.split(None, 1) for ln in lines]
    if parts and all(len(p) == 2 and p[0].isdigit() for p in parts):
        return {int(p[0]): p[1].strip() for p in parts}
    return dict(enumerate(lines))
