"""gst-launch-like descriptions: "urisrc uri=a.mp4 ! m.sink_0 streammux name=m batch-size=1 ! fakesink".

Grammar (a subset of gst-launch-1.0): elements with key=value properties, '!' links, `name.`
and `name.pad` references (usable before the named element appears), caps strings such as
video/x-raw(memory:NVMM),format=RGBA are accepted and ignored (frames are always RGB here).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from ..errors import LinkError, PropertyError
from .element import Element
from .pipeline import Pipeline
from .registry import make_element


@dataclass
class _Spec:
    factory: str
    props: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    element: Element | None = None


@dataclass
class _Ref:
    name: str
    pad: str | None


def _is_caps(tok: str) -> bool:
    return "/" in tok.split(",", 1)[0] and "=" not in tok.split(",", 1)[0]


def _tokens(description: str) -> list[str]:
    try:
        toks = shlex.split(description.replace("!", " ! "), posix=True)
    except ValueError as e:
        raise LinkError(f"cannot parse pipeline description: {e}") from None
    return toks


def parse_launch(description: str) -> Pipeline:
    """Build a Pipeline from a launch description."""
    specs: list[_Spec] = []
    links: list[tuple[_Spec | _Ref, _Spec | _Ref]] = []
    prev: _Spec | _Ref | None = None
    pending = False
    for tok in _tokens(description):
        if tok == "!":
            if prev is None:
                raise LinkError("'!' with nothing before it")
            pending = True
            continue
        if _is_caps(tok):
            continue  # caps do not constrain anything here
        if "=" in tok and not pending and isinstance(prev, _Spec):
            key, value = tok.split("=", 1)
            if key == "name":
                prev.name = value
            else:
                prev.props[key] = value
            continue
        if "=" in tok:
            raise LinkError(f"property '{tok}' has no element before it")
        if "." in tok and not tok.endswith((".mp4", ".mkv")):
            name, pad = tok.split(".", 1)
            node: _Spec | _Ref = _Ref(name, pad or None)
        else:
            node = _Spec(tok)
            specs.append(node)
        if pending:
            links.append((prev, node))  # type: ignore[arg-type]
        pending = False
        prev = node
    if pending:
        raise LinkError("pipeline description ends with '!'")
    if not specs:
        raise LinkError("empty pipeline description")

    pipe = Pipeline()
    by_name: dict[str, Element] = {}
    for i, s in enumerate(specs):
        try:
            s.element = make_element(s.factory, s.name or f"{s.factory}{i}", **s.props)
        except PropertyError as e:
            raise PropertyError(f"in '{s.factory}': {e}") from None
        pipe.add(s.element)
        by_name[s.element.name] = s.element

    def resolve(n: _Spec | _Ref) -> tuple[Element, str | None]:
        if isinstance(n, _Spec):
            assert n.element is not None
            return n.element, None
        if n.name not in by_name:
            raise LinkError(f"reference '{n.name}.' names no element (known: {', '.join(by_name)})")
        return by_name[n.name], n.pad

    for a, b in links:
        src_el, src_pad = resolve(a)
        sink_el, sink_pad = resolve(b)
        src = src_el.get_static_pad(src_pad) if src_pad else next(
            (p for p in src_el.src_pads.values() if p.peer is None), None) or src_el.request_pad("src_%u")
        sink = sink_el.get_static_pad(sink_pad) if sink_pad else next(
            (p for p in sink_el.sink_pads.values() if p.peer is None), None) or sink_el.request_pad("sink_%u")
        src.link(sink)
    return pipe
