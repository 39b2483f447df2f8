"""YAML loading that keeps line numbers of mapping keys."""
from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError


class LineDict(dict):
    """A dict that remembers the 1-based line of each key: `d.lines[key]`."""

    lines: dict[str, int]


def _construct(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        d = LineDict()
        d.lines = {}
        for k, v in node.value:
            key = _construct(k)
            d[key] = _construct(v)
            d.lines[key] = k.start_mark.line + 1
        return d
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v) for v in node.value]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            node = yaml.compose(fh, Loader=yaml.SafeLoader)
    except FileNotFoundError:
        raise ConfigError("file not found", file=path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', e)}", file=path,
                          line=mark.line + 1 if mark else None) from None
    return _construct(node) if node is not None else LineDict()
