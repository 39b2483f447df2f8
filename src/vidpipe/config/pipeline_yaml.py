"""Pipelines described in YAML.

    elements:
      - {factory: urisrc, name: src, uri: clip.mp4}
      - {factory: streammux, name: mux, batch-size: 1}
      - {factory: infer, config-file-path: pgie.txt}
      - {factory: fakesink}
    links:            # optional: without it the elements are linked in order
      - src -> mux.sink_0
      - mux -> infer0
      - infer0 -> fakesink0

or simply `launch: "urisrc uri=clip.mp4 ! ... ! fakesink"`. `http: 127.0.0.1:8080` serves the
REST API, /metrics and the console while `vidpipe run --pipeline` runs it. Relative paths in properties named
uri/location/config-file-path/model/labels are taken relative to the YAML file.
"""
from __future__ import annotations

import os

from ..core.pipeline import Pipeline
from ..core.registry import make_element
from ..errors import ConfigError, VidpipeError
from .yamlfile import load_yaml

_PATH_PROPS = {"uri", "location", "config-file-path", "model", "labels"}


def load_pipeline_yaml(path: str) -> Pipeline:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with 'elements' (and optional 'links') or 'launch'", file=path)
    lines = getattr(data, "lines", {})
    for key in data:
        if key not in ("elements", "links", "launch", "name", "http"):
            raise ConfigError("unknown key; allowed: elements, links, launch, name, http", file=path,
                              line=lines.get(key), key=str(key))
    http = data.get("http")
    if http is not None:
        from ..service import parse_address
        try:
            parse_address(str(http))
        except VidpipeError as e:
            raise ConfigError(str(e).replace("--http", "http"), file=path, line=lines.get("http"), key="http") from None
    p = _build(data, path, lines)
    p.serve_address = str(http) if http is not None else ""
    return p


def _build(data, path: str, lines) -> Pipeline:
    base = os.path.dirname(os.path.abspath(path))
    if "launch" in data:
        from ..core.launch import parse_launch
        try:
            return parse_launch(str(data["launch"]))
        except VidpipeError as e:
            raise ConfigError(str(e), file=path, line=lines.get("launch"), key="launch") from None
    items = data.get("elements")
    if not isinstance(items, list) or not items:
        raise ConfigError("'elements' must be a non-empty list", file=path, line=lines.get("elements"))
    pipe = Pipeline(str(data.get("name", "pipeline")))
    for i, item in enumerate(items):
        il = getattr(item, "lines", {})
        if not isinstance(item, dict) or "factory" not in item:
            raise ConfigError(f"element #{i + 1} needs a 'factory' key", file=path, line=lines.get("elements"))
        props = {k: v for k, v in item.items() if k not in ("factory", "name")}
        for k, v in list(props.items()):
            if str(k).replace("_", "-") in _PATH_PROPS and isinstance(v, str) and v and "://" not in v \
                    and not os.path.isabs(v):
                props[k] = os.path.join(base, v)
        try:
            el = make_element(str(item["factory"]), str(item.get("name") or f"{item['factory']}{i}"))
            for k, v in props.items():
                try:
                    el.set_property(str(k), v)
                except VidpipeError as e:
                    raise ConfigError(str(e), file=path, line=il.get(k), key=str(k)) from None
        except ConfigError:
            raise
        except VidpipeError as e:
            raise ConfigError(str(e), file=path, line=il.get("factory"), key="factory") from None
        pipe.add(el)
    links = data.get("links")
    try:
        if links is None:
            pipe.link(*pipe.elements)
        else:
            for n, spec in enumerate(links):
                a, _, b = str(spec).partition("->")
                if not b:
                    raise ConfigError(f"link #{n + 1} {spec!r}: write 'a -> b' or 'a.src -> mux.sink_0'",
                                      file=path, line=lines.get("links"))
                src = _pad(pipe, a.strip(), "src")
                sink = _pad(pipe, b.strip(), "sink")
                src.link(sink)
    except ConfigError:
        raise
    except (VidpipeError, KeyError) as e:
        raise ConfigError(str(e).strip("'\""), file=path, line=lines.get("links")) from None
    return pipe


def _pad(pipe: Pipeline, spec: str, direction: str):
    name, _, pad = spec.partition(".")
    el = pipe.get_by_name(name)
    if pad:
        return el.get_static_pad(pad)
    pads = el.src_pads if direction == "src" else el.sink_pads
    free = next((p for p in pads.values() if p.peer is None), None)
    return free or el.request_pad(f"{direction}_%u")
