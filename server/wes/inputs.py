"""Checks on everything a WES request points at, before anything runs.

* attachment names: relative, no ``..``, no backslash, no NUL, no drive letter,
  capped in count and in size per file; written below the run's ``inputs/`` only;
* ``workflow_url``: an attachment (relative path, optional ``#fragment``), a
  workflow shipped in ``workflows/`` (by name or ``workflows/<name>/<file>``),
  or an ``http(s)`` URL whose host is on ``wes_url_allowlist`` and resolves
  only to public addresses; ``file://``, absolute server paths and anything else
  are refused;
* File/Directory locations in ``workflow_params``: relative (inside the run's
  inputs), absolute paths under ``wes_input_roots``, ``drs://`` objects of this
  node the caller may read, or allow-listed public ``http(s)`` URLs (fetched
  into the run directory at submit, see :mod:`server.wes.remote`);
* everything the workflow document itself names: :mod:`server.wes.graph`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from server.errors import InvalidInput, PayloadTooLarge
from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
CHUNK = 1 << 16


# ---------------------------------------------------------------- attachments
def check_attachment_name(name: str) -> PurePosixPath:
    """The safe relative path for an attachment, or InvalidInput."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("workflow_attachment: empty file name")
    if "\x00" in name:
        raise InvalidInput("workflow_attachment: NUL byte in file name")
    if "\\" in name:
        raise InvalidInput(f"workflow_attachment: backslash in file name {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidInput(f"workflow_attachment: absolute file name {name!r}")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"workflow_attachment: {name!r} has an empty, '.' or '..' component")
    if any(ord(c) < 32 for c in name) or len(name) > 1024:
        raise InvalidInput(f"workflow_attachment: unsafe file name {name!r}")
    return PurePosixPath(*parts)


def save_attachments(
    settings: Settings, inputs: Path, files: Iterable[tuple[str, BinaryIO]]
) -> list[str]:
    """Write attachments below ``inputs`` (which must exist); returns the names."""
    files = list(files)
    if len(files) > settings.wes_max_attachments:
        raise PayloadTooLarge(
            f"too many workflow_attachment files ({len(files)} > {settings.wes_max_attachments})"
        )
    names = [check_attachment_name(name) for name, _ in files]
    root = inputs.resolve()
    seen: set[PurePosixPath] = set()
    for rel, (_, stream) in zip(names, files, strict=False):
        budget = settings.wes_max_attachment_bytes
        if rel in seen:  # some clients send a file twice: fine when it is the same file
            again = stream.read(budget + 1)
            if again != root.joinpath(*rel.parts).read_bytes():
                raise InvalidInput(f"workflow_attachment: {rel} sent twice with different contents")
            continue
        seen.add(rel)
        target = root.joinpath(*rel.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not str(target.parent.resolve()).startswith(str(root)):
                raise InvalidInput(f"workflow_attachment: {rel} escapes the run directory")
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        except OSError:  # "a" and "a/b" both attached, and the like
            raise InvalidInput(
                f"workflow_attachment: {rel} clashes with another attachment"
            ) from None
        with os.fdopen(fd, "wb") as out:
            while True:
                block = stream.read(CHUNK)
                if not block:
                    break
                budget -= len(block)
                if budget < 0:
                    raise PayloadTooLarge(
                        f"workflow_attachment {rel} exceeds "
                        f"{settings.wes_max_attachment_bytes} bytes"
                    )
                out.write(block)
    return [str(n) for n in dict.fromkeys(names)]


# ----------------------------------------------------------------------- URLs
def _public_ip(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_remote_url(
    settings: Settings,
    url: str,
    *,
    what: str = "workflow_url",
    resolve: Callable[[str], list[str]] | None = None,
) -> str:
    """Allow an http(s) URL only on an allow-listed host resolving to public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"{what}: scheme {parts.scheme!r} is not allowed")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host or parts.username or parts.password:
        raise InvalidInput(f"{what}: a URL needs a host and no credentials")
    allow = {h.lower().rstrip(".") for h in settings.wes_url_allowlist}
    if host not in allow:
        raise InvalidInput(f"{what}: host {host!r} is not on the allow-list of this node")
    resolve = resolve or _resolve
    try:
        addrs = [host] if _is_ip(host) else resolve(host)
    except OSError:
        raise InvalidInput(f"{what}: host {host!r} does not resolve") from None
    if not addrs or not all(_public_ip(a) for a in addrs):
        raise InvalidInput(f"{what}: host {host!r} resolves to a non-public address")
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _resolve(host: str) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})


def shipped_workflows() -> dict[str, Path]:
    """Workflows in ``workflows/``: name -> ``workflows/<name>/<name>.cwl``."""
    found = {}
    if WORKFLOWS.is_dir():
        for d in sorted(WORKFLOWS.iterdir()):
            main = d / f"{d.name}.cwl"
            if d.is_dir() and main.is_file():
                found[d.name] = main
    return found


def resolve_workflow(
    settings: Settings, workflow_url: str, inputs: Path, attachments: list[str]
) -> str:
    """What the engine runs: an absolute path (plus #fragment) or a checked URL."""
    if not isinstance(workflow_url, str) or not workflow_url.strip():
        raise InvalidInput("workflow_url is required")
    url = workflow_url.strip()
    if "\x00" in url or "\\" in url:
        raise InvalidInput("workflow_url: NUL or backslash is not allowed")
    scheme = urlsplit(url).scheme
    if scheme and len(scheme) > 1:  # (a one-letter "scheme" would be a drive letter)
        return check_remote_url(settings, url)
    path, _, fragment = url.partition("#")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise InvalidInput("workflow_url: absolute server paths are not allowed")
    if fragment and not all(c.isalnum() or c in "-_./" for c in fragment):
        raise InvalidInput("workflow_url: unsupported characters in the #fragment")
    suffix = f"#{fragment}" if fragment else ""
    if path in attachments:
        rel = check_attachment_name(path)
        return str(inputs.resolve().joinpath(*rel.parts)) + suffix
    shipped = shipped_workflows()
    if path in shipped:
        return str(shipped[path]) + suffix
    rel = check_attachment_name(path.removeprefix("./"))
    if rel.parts[0] == "workflows":
        target = (REPO / rel).resolve()
        if target.is_file() and str(target).startswith(str(WORKFLOWS) + os.sep):
            return str(target) + suffix
    raise InvalidInput(
        f"workflow_url {path!r} is neither an attached file nor a shipped workflow "
        f"({', '.join(shipped) or 'none shipped'})"
    )


# ------------------------------------------------------------------ job inputs
FORBIDDEN_KEYS = ("$import", "$include", "$mixin", "cwl:tool")


def check_params(
    settings: Settings,
    params: Any,
    inputs: Path,
    resolve_drs: Callable[[str], str] | None = None,
    attachments: Iterable[str] = (),
    fetch_remote: Callable[[str], str] | None = None,
    readable: set[str] | None = None,
) -> Any:
    """Validate and normalise File/Directory locations; returns the job object.

    A client-side absolute path (``file:///home/me/wf/data/x.bam``) whose tail
    names an attachment (``data/x.bam``) means that attachment, as clients that
    upload a workflow's files send their own paths. ``http(s)`` locations are
    fetched now by ``fetch_remote`` (into the run directory; refused without
    one), since nothing is fetched at run time. Server paths used under
    ``wes_input_roots`` are added to ``readable``."""
    root = inputs.resolve()
    readable = set() if readable is None else readable
    input_roots = [Path(r).resolve() for r in settings.wes_input_roots]
    attached = sorted(attachments, key=len, reverse=True)

    def attachment_for(path: str) -> str | None:
        for name in attached:
            if path == name or path.endswith("/" + name):
                return str(root.joinpath(*PurePosixPath(name).parts))
        return None

    def location(value: str) -> str:
        if not isinstance(value, str) or "\x00" in value or "\\" in value:
            raise InvalidInput("workflow_params: invalid file location")
        parts = urlsplit(value)
        if parts.scheme == "drs":
            if resolve_drs is None:
                raise InvalidInput("workflow_params: drs:// inputs are not available on this node")
            return resolve_drs(value)
        if parts.scheme in ("http", "https"):
            check_remote_url(settings, value, what="workflow_params")
            if fetch_remote is None:
                raise InvalidInput(
                    f"workflow_params: {value!r}: http(s) inputs are not available here"
                )
            return fetch_remote(value)
        if parts.scheme == "file" or value.startswith("/"):
            from urllib.parse import unquote

            raw = unquote(parts.path) if parts.scheme == "file" else value
            mapped = attachment_for(raw)
            if mapped is not None:
                return mapped
            path = Path(raw).resolve()
            if not any(path == r or r in path.parents for r in input_roots):
                raise InvalidInput(
                    f"workflow_params: {value!r} is outside the directories inputs may read"
                )
            readable.add(str(path))
            return str(path)
        if parts.scheme and len(parts.scheme) > 1:
            raise InvalidInput(f"workflow_params: scheme {parts.scheme!r} is not allowed")
        rel = check_attachment_name(value.removeprefix("./"))
        return str(root.joinpath(*rel.parts))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in FORBIDDEN_KEYS:
                    raise InvalidInput(f"workflow_params: {key!r} is not allowed")
                out[key] = value
            if out.get("class") in ("File", "Directory"):
                for key in ("location", "path"):
                    if key in out:
                        out[key] = location(out[key])
            return {
                k: (
                    v
                    if k in ("location", "path") and out.get("class") in ("File", "Directory")
                    else walk(v)
                )
                for k, v in out.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(params)
