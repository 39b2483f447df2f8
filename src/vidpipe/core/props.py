"""Typed element properties: kebab-case names, set by keyword, set_property() or config text."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..errors import PropertyError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false/1/0), got {v!r}")


def _coerce_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return int(str(v).strip(), 0)


def _coerce_list(v: Any) -> list:
    if isinstance(v, (list, tuple)):
        return list(v)
    s = str(v).strip()
    if not s:
        return []
    return [p.strip() for p in s.replace(",", ";").split(";") if p.strip()]


_COERCE: dict[type, Callable[[Any], Any]] = {
    bool: _coerce_bool, int: _coerce_int, float: lambda v: float(str(v).strip()) if isinstance(v, str) else float(v),
    str: lambda v: str(v), list: _coerce_list, object: lambda v: v,
}


class Prop:
    """A typed property. Declare on an Element subclass: ``batch_size = Prop(int, 1, "...")``.

    The property's public name is the attribute name in kebab-case (``batch-size``).
    """

    def __init__(self, type_: type, default: Any, doc: str, *, choices: Sequence[Any] | None = None,
                 minimum: float | None = None, maximum: float | None = None, nullable: bool = False):
        self.type = type_
        self.default = default
        self.doc = doc
        self.choices = list(choices) if choices is not None else None
        self.minimum, self.maximum, self.nullable = minimum, maximum, nullable
        self.attr = ""
        self.name = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr
        self.name = attr.replace("_", "-")

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._props.get(self.attr, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        obj._props[self.attr] = self.coerce(value, owner=getattr(obj, "name", ""))

    def coerce(self, value: Any, owner: str = "") -> Any:
        where = f"{owner}: " if owner else ""
        if value is None and (self.nullable or self.default is None):
            return None
        try:
            v = _COERCE[self.type](value) if self.type in _COERCE else self.type(value)
        except (TypeError, ValueError) as e:
            raise PropertyError(f"{where}property '{self.name}' expects {self.type.__name__}: {e}") from None
        if self.choices is not None:
            if isinstance(v, str):
                match = [c for c in self.choices if str(c).lower() == v.lower()]
                if match:
                    v = match[0]
            if v not in self.choices:
                allowed = ", ".join(map(str, self.choices))
                raise PropertyError(f"{where}property '{self.name}' got {value!r}; allowed: {allowed}")
        if self.minimum is not None and v < self.minimum:
            raise PropertyError(f"{where}property '{self.name}' got {v}; minimum is {self.minimum}")
        if self.maximum is not None and v > self.maximum:
            raise PropertyError(f"{where}property '{self.name}' got {v}; maximum is {self.maximum}")
        return v

    def describe(self) -> str:
        extra = ""
        if self.choices is not None:
            extra = f" {{{'|'.join(map(str, self.choices))}}}"
        elif self.minimum is not None or self.maximum is not None:
            extra = f" [{self.minimum if self.minimum is not None else ''}..{self.maximum if self.maximum is not None else ''}]"
        return f"{self.name:<26} {self.type.__name__:<6} default={self.default!r}{extra}\n{'':28}{self.doc}"
