"""Files on the node's own file system."""

from __future__ import annotations

from pathlib import Path

from server.errors import NotFound


def is_remote(location: str) -> bool:
    return "://" in location


def local_path(location: str) -> Path:
    """The registered absolute path, refusing anything that is not one."""
    if is_remote(location):
        raise ValueError(f"not a local location: {location!r}")
    path = Path(location)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError("registered locations are absolute paths")
    if not path.is_file():
        raise NotFound("a registered file is missing")
    return path
