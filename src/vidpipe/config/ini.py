"""An INI reader that keeps the line of every key (for file:line:key errors)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass
class Entry:
    section: str
    key: str
    value: str
    line: int
    section_line: int = 0
    raw_key: str = ""  # the key as written (names inside keys, like roi-Entry, keep their case)


def read_ini(path: str) -> list[Entry]:
    """Entries in file order. Keys are lower-cased; `#` and `;` start comments at line start."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError("config file not found", file=path) from None
    except UnicodeDecodeError:
        raise ConfigError("not a text config file", file=path) from None
    entries: list[Entry] = []
    section = ""
    section_line = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"bad section header {line!r}", file=path, line=n)
            section = line[1:-1].strip().lower()
            section_line = n
            continue
        if "=" not in line:
            raise ConfigError(f"expected 'key=value', got {line!r}", file=path, line=n)
        key, value = line.split("=", 1)
        if not section:
            raise ConfigError("key outside any [section]", file=path, line=n, key=key.strip())
        entries.append(Entry(section, key.strip().lower(), value.strip(), n, section_line, key.strip()))
    return entries


def read_groups(path: str, what: str) -> list[Entry]:
    """A config of [group] key=value sections, as INI or as YAML with the same groups and keys
    (lists of numbers, nested or not, become DeepStream's "a;b;c"). `what` names the file in the
    not-found message. Entries keep file lines for file:line:key errors."""
    import os
    if not os.path.exists(path):
        raise ConfigError(f"{what} file not found; check the path", file=path)
    if not path.endswith((".yml", ".yaml")):
        return read_ini(path)
    from .yamlfile import load_yaml
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of groups, each holding its keys", file=path)
    out = []
    for sec, body in data.items():
        line = getattr(data, "lines", {}).get(sec, 0)
        if not isinstance(body, dict):
            raise ConfigError(f"group '{sec}' must hold a mapping of keys", file=path, line=line)
        for key, value in body.items():
            if isinstance(value, (list, tuple)):
                flat = []
                for v in value:
                    flat.extend(v if isinstance(v, (list, tuple)) else [v])
                value = ";".join(str(v) for v in flat)
            elif isinstance(value, bool):
                value = int(value)
            out.append(Entry(str(sec).lower(), str(key).lower(), str(value), getattr(body, "lines", {}).get(key, line),
                             line, str(key)))
    return out
