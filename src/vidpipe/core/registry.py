"""Element registry: factory names -> classes. Third parties register through the
`vidpipe.elements` entry-point group (value: "module:Class")."""
from __future__ import annotations

import logging
from importlib import import_module, metadata
from typing import Any, Callable, TypeVar

from ..errors import PropertyError

log = logging.getLogger("vidpipe")
_REGISTRY: dict[str, type] = {}
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}
_loaded = False
T = TypeVar("T", bound=type)

# modules that register the built-in elements (imported on first use)
_BUILTIN_MODULES = ("vidpipe.elements.sources", "vidpipe.elements.streammux", "vidpipe.elements.osd",
                    "vidpipe.elements.encode", "vidpipe.elements.network", "vidpipe.elements.sinks", "vidpipe.elements.basic",
                    "vidpipe.elements.multistream", "vidpipe.elements.testsrc", "vidpipe.elements.record",
                    "vidpipe.infer.element", "vidpipe.track.element", "vidpipe.analytics.element",
                    "vidpipe.messaging.msgconv", "vidpipe.messaging.msgbroker")


def register(name: str, *, aliases: dict[str, dict[str, Any]] | None = None) -> Callable[[T], T]:
    """Class decorator: register an Element under `name`; `aliases` map other names (DeepStream's,
    e.g. "nvstreammux") to this class with preset properties."""

    def deco(cls: T) -> T:
        cls.factory_name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        for alias, preset in (aliases or {}).items():
            _ALIASES[alias] = (name, preset)
        return cls

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        import_module(mod)
    try:
        eps = metadata.entry_points(group="vidpipe.elements")
    except TypeError:  # pragma: no cover - very old importlib.metadata
        eps = ()
    for ep in eps:
        try:
            cls = ep.load()
            register(ep.name)(cls)
        except Exception as e:  # a broken plug-in must not break vidpipe; say which one
            log.warning("element plug-in %r (%s) failed to load: %s", ep.name, ep.value, e)


def element_factories() -> dict[str, type]:
    _load()
    return dict(sorted(_REGISTRY.items()))


def aliases() -> dict[str, tuple[str, dict[str, Any]]]:
    _load()
    return dict(sorted(_ALIASES.items()))


def find_factory(name: str) -> tuple[type, dict[str, Any]]:
    _load()
    if name in _REGISTRY:
        return _REGISTRY[name], {}
    if name in _ALIASES:
        real, preset = _ALIASES[name]
        return _REGISTRY[real], dict(preset)
    import difflib
    close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `vidpipe inspect` lists them"
    raise PropertyError(f"no element named '{name}'{hint}")


def make_element(factory: str, name: str | None = None, **props: Any):
    """Create an element by factory name (or DeepStream alias) with keyword properties."""
    cls, preset = find_factory(factory)
    preset.update(props)
    return cls(name=name, **preset)
