"""One exception root for vidpipe; each subclass also inherits the matching builtin."""
from __future__ import annotations


class VidpipeError(Exception):
    """Root of every error vidpipe raises on purpose."""


class ConfigError(VidpipeError, ValueError):
    """A bad configuration value or key. Carries file, line and key when known."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None):
        self.file, self.line, self.key = file, line, key
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        if key is not None:
            where += f"{key}: "
        super().__init__(where + message)


class PropertyError(VidpipeError, ValueError):
    """An element property that does not exist or got a value it cannot take."""


class LinkError(VidpipeError, ValueError):
    """Pads or elements that cannot be linked."""


class MediaError(VidpipeError, OSError):
    """A file or stream that cannot be opened, read or written."""


class UnsupportedCodecError(MediaError):
    """A stream whose codec this build cannot decode or encode."""


class ModelError(VidpipeError, ValueError):
    """A model that cannot be loaded, or whose tensors do not fit its parser."""


class AssetError(VidpipeError, OSError):
    """A default asset that cannot be fetched or fails its checksum."""


class PipelineError(VidpipeError, RuntimeError):
    """The pipeline stopped on an error; `.messages` holds the bus ERROR messages."""

    def __init__(self, message: str, messages: list | None = None):
        super().__init__(message)
        self.messages = messages or []
