"""The whole CWL graph of a submission, loaded and checked before anything runs.

cwltool's own loader (schema-salad underneath) parses the workflow and every
document it pulls in: ``$import``, ``$include``, ``$mixin``, ``run:`` and
``cwl:tool`` references. It reads them through the fetcher given here, which
applies the node's rules before any byte is read:

* a local document must lie inside the run's ``inputs/`` (the attachments) or
  the node's ``workflows/`` directory (shipped workflows); any other server
  path is refused unread (and ``check_exists`` never touches it either, so the
  loader cannot be used to probe the server's file system);
* a remote document is fetched by :mod:`server.wes.remote` (allow-list, public
  addresses, every redirect re-checked, the checked address pinned); the loader
  never opens a socket itself;
* nothing else (other schemes, ``$schemas`` downloads) is fetched.

Once loaded, every literal File/Directory ``location`` or ``path`` anywhere in
the graph (input and step ``default:`` values, their ``secondaryFiles`` and
``listing``, ``InitialWorkDirRequirement`` listings, in ``requirements`` and
``hints``) must be an attachment, a file of the shipped workflow, or a path
under ``wes_input_roots``. Remote (``http(s)``, ``drs://``) locations are
refused inside documents: the engine has no network, and such inputs belong in
``workflow_params``, where the node fetches or resolves them at submit.

A graph that reaches a remote document is stored packed (``cwltool --pack``)
in the run directory and the engine runs that local copy, so the engine reads
exactly the documents checked here.

Why by hand: cwltool and schema-salad load and validate; neither has a notion
of which server paths or hosts a caller may reach. This module is only that
policy, applied through the loader's fetcher hook and a walk over the result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from server.errors import InvalidInput, ServiceError
from server.settings import Settings
from server.wes import inputs as rules
from server.wes import remote

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
LOCATION_KEYS = ("location", "path")


@dataclasses.dataclass
class Scope:
    """What one submission's loader may read, and what it found."""

    settings: Settings
    inputs_dir: Path
    resolve: Callable[[str], list[str]] | None = None
    top: str = ""  # the workflow itself
    readable: set[str] = dataclasses.field(default_factory=set)
    remote_docs: dict[str, str] = dataclasses.field(default_factory=dict)
    referrer: dict[str, str] = dataclasses.field(default_factory=dict)
    refusal: InvalidInput | None = None

    @property
    def doc_roots(self) -> list[Path]:
        return [self.inputs_dir.resolve(), rules.WORKFLOWS.resolve()]

    # ------------------------------------------------------------ naming
    def show(self, url: str) -> str:
        """A location as the caller knows it (attachment name, shipped path, URL)."""
        if url.startswith("file://"):
            path = unquote(urlsplit(url).path)
            frag = urlsplit(url).fragment
            for root in (self.inputs_dir.resolve(), rules.WORKFLOWS.resolve().parent):
                prefix = str(root) + os.sep
                if path.startswith(prefix) and (
                    root != rules.WORKFLOWS.resolve().parent
                    or path.startswith(str(rules.WORKFLOWS) + os.sep)
                ):
                    return path[len(prefix) :] + (f"#{frag}" if frag else "")
            return path
        return url

    def refuse(self, message: str) -> InvalidInput:
        exc = InvalidInput(message)
        if self.refusal is None:
            self.refusal = exc
        return exc

    # ------------------------------------------------------------ documents
    def local_document(self, url: str) -> Path:
        """The file behind a ``file://`` document reference, if allowed."""
        path = Path(unquote(urlsplit(url).path)).resolve()
        for root in self.doc_roots:
            if path == root or root in path.parents:
                if root == rules.WORKFLOWS.resolve() and path != root:
                    shipped = root / path.relative_to(root).parts[0]
                    self.readable.add(str(shipped))
                return path
        where = self.referrer.get(url.partition("#")[0])
        raise self.refuse(
            f"workflow document: {self.show(url)!r}"
            + (f" (referenced from {self.show(where)})" if where else "")
            + " is outside the attached files and the shipped workflows"
        )

    def remote_document(self, url: str) -> str:
        base = url.partition("#")[0]
        if base in self.remote_docs:
            return self.remote_docs[base]
        where = self.referrer.get(base)
        if base == self.top.partition("#")[0]:
            what = "workflow_url"
        elif where is not None:
            what = f"workflow document {self.show(where)} references {base}:"
        else:
            what = f"a workflow document references {base}:"
        try:
            _, body = remote.fetch(
                self.settings, base, what=what, limit=MAX_DOCUMENT_BYTES, resolve=self.resolve
            )
        except InvalidInput as exc:
            self.refuse(str(exc))
            raise
        text = body.decode("utf-8", "replace")
        self.remote_docs[base] = text
        return text


def _fetcher_constructor(scope: Scope):
    from schema_salad.exceptions import ValidationException
    from schema_salad.fetcher import DefaultFetcher

    class GuardedFetcher(DefaultFetcher):
        """schema-salad's fetcher with the node's rules in front of every read."""

        def fetch_text(self, url: str, content_types: list[str] | None = None) -> str:
            cached = self.cache.get(url)
            if isinstance(cached, str):  # the CWL schemas cwltool ships
                return cached
            scheme = urlsplit(url).scheme
            if scheme == "file":
                path = scope.local_document(url)
                try:
                    return path.read_text("utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise ValidationException(
                        f"cannot read {scope.show(url)}: {type(exc).__name__}"
                    ) from None
            if scheme in ("http", "https"):
                return scope.remote_document(url)
            raise scope.refuse(f"workflow document: {url!r}: scheme {scheme!r} is not allowed")

        def check_exists(self, url: str) -> bool:
            if url in self.cache:
                return True
            parts = urlsplit(url)
            if parts.scheme == "file":
                path = Path(unquote(parts.path)).resolve()
                roots = scope.doc_roots + [
                    Path(r).resolve() for r in scope.settings.wes_input_roots
                ]
                if any(path == r or r in path.parents for r in roots):
                    return path.exists()
                return True  # decided (refused) by the graph walk or fetch_text, never probed
            return True  # remote: fetched (and checked) only if it is a document

        def urljoin(self, base_url: str, url: str) -> str:
            joined = super().urljoin(base_url, url)
            scope.referrer.setdefault(joined.partition("#")[0], base_url.partition("#")[0])
            return joined

    def construct(cache, session):
        return GuardedFetcher(cache, None)

    return construct


def _loading_context(scope: Scope):
    from cwltool.context import LoadingContext
    from cwltool.workflow import default_make_tool

    lc = LoadingContext()
    lc.construct_tool_object = default_make_tool
    lc.fetcher_constructor = _fetcher_constructor(scope)
    lc.resolver = _no_resolver
    lc.skip_schemas = True  # ``$schemas`` (ontologies) are never downloaded
    lc.disable_js_validation = True  # no node.js process at submit
    lc.do_update = True
    return lc


def _no_resolver(loader, name: str):
    return None


# ------------------------------------------------------------------ the walk
def _label(node: Any, index: int) -> str:
    if isinstance(node, dict) and isinstance(node.get("id"), str):
        return node["id"].rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return str(index)


def _check_literal(
    scope: Scope, value: Any, base: str, where: str, input_roots: list[Path]
) -> None:
    if not isinstance(value, str) or not value:
        raise scope.refuse(f"{where}: a File or Directory location must be a string")
    if value.startswith("_:"):  # a literal (``contents:``) the engine writes itself
        return
    parts = urlsplit(value)
    if parts.scheme in ("", "file"):
        raw = unquote(parts.path) if parts.scheme == "file" else value
        if not raw.startswith("/"):
            base_path = unquote(urlsplit(base).path) if base.startswith("file:") else ""
            if not base_path:
                raise scope.refuse(f"{where}: relative location {value!r} in a remote document")
            raw = str(Path(base_path).parent / raw)
        path = Path(raw).resolve()
        for root in scope.doc_roots:
            if path == root or root in path.parents:
                if root == rules.WORKFLOWS.resolve():
                    shipped_dir = Path(unquote(urlsplit(base).path)).resolve().parent
                    if not (path == shipped_dir or shipped_dir in path.parents):
                        break  # another shipped workflow's files are not this run's inputs
                    scope.readable.add(str(path))
                return
        if any(path == r or r in path.parents for r in input_roots):
            scope.readable.add(str(path))
            return
        raise scope.refuse(
            f"{where}: location {scope.show(value)!r} is outside the attached files, the "
            "shipped workflow and the directories inputs may read"
        )
    raise scope.refuse(
        f"{where}: location {value!r}: a workflow document may only name local files "
        "(attachments or paths under the input roots); pass remote or drs:// files "
        "in workflow_params"
    )


def check_literals(scope: Scope, node: Any, base: str, where: str) -> None:
    """Refuse any File/Directory literal in ``node`` that the rules forbid."""
    input_roots = [Path(r).resolve() for r in scope.settings.wes_input_roots]

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            if value.get("class") in ("File", "Directory"):
                for key in LOCATION_KEYS:
                    if key in value:
                        _check_literal(scope, value[key], base, f"{where} {path}", input_roots)
            for key, item in value.items():
                if key not in LOCATION_KEYS:
                    walk(item, f"{path}/{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}/{_label(item, i)}")

    walk(node, "")


def _walk_process(scope: Scope, process: Any, seen: set[int]) -> None:
    if id(process) in seen:
        return
    seen.add(id(process))
    doc = process.tool
    ident = str(doc.get("id", ""))
    check_literals(scope, doc, ident, f"in {scope.show(ident)}:")
    for step in getattr(process, "steps", []) or []:
        sid = str(step.tool.get("id", ""))
        check_literals(
            scope, {k: v for k, v in step.tool.items() if k != "run"}, sid, f"in {scope.show(sid)}:"
        )
        embedded = getattr(step, "embedded_tool", None)
        if embedded is not None:
            _walk_process(scope, embedded, seen)


def secondary_patterns(process: Any) -> set[str]:
    """Literal secondaryFiles patterns of every input in the graph (for readable.json)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "secondaryFiles":
                    for entry in item if isinstance(item, list) else [item]:
                        pattern = entry.get("pattern") if isinstance(entry, dict) else entry
                        if isinstance(pattern, str) and "$(" not in pattern and "${" not in pattern:
                            found.add(pattern)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    todo, seen = [process], set()
    while todo:
        p = todo.pop()
        if id(p) in seen:
            continue
        seen.add(id(p))
        walk(p.tool.get("inputs", []))
        for step in getattr(p, "steps", []) or []:
            if getattr(step, "embedded_tool", None) is not None:
                todo.append(step.embedded_tool)
    return found


@dataclasses.dataclass
class Graph:
    workflow: str  # what the engine runs
    readable: set[str]  # server paths outside the run directory the graph uses
    patterns: set[str]  # literal secondaryFiles patterns of the graph's inputs


def load(
    settings: Settings,
    workflow: str,
    workdir: Path,
    inputs_dir: Path,
    *,
    resolve: Callable[[str], list[str]] | None = None,
) -> Graph:
    """Load and check the graph of ``workflow`` (a local path or a checked URL).

    Returns what the engine should run: the same path for local documents, a
    packed local copy when any document was remote."""
    import_cwltool()
    from cwltool.load_tool import load_tool
    from schema_salad.exceptions import ValidationException

    remote_url = urlsplit(workflow).scheme in ("http", "https")
    uri = (
        workflow
        if remote_url
        else Path(workflow.partition("#")[0]).resolve().as_uri()
        + ("#" + workflow.partition("#")[2] if "#" in workflow else "")
    )
    scope = Scope(settings, inputs_dir, resolve=resolve, top=uri)
    lc = _loading_context(scope)
    try:
        tool = load_tool(uri, lc)
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - the loader's own errors, wrapped or not
        if scope.refusal is not None:
            raise scope.refusal from None
        if isinstance(exc, (ValidationException, ValueError, KeyError, TypeError)):
            raise InvalidInput(
                f"workflow document is not valid CWL: {_short(exc, scope)}"
            ) from None
        raise InvalidInput(
            f"workflow document could not be loaded: {type(exc).__name__}: {_short(exc, scope)}"
        ) from None
    if scope.refusal is not None:  # refused somewhere the loader swallowed the error
        raise scope.refusal
    _walk_process(scope, tool, set())
    patterns = secondary_patterns(tool)
    run_target = workflow
    if scope.remote_docs:
        run_target = _pack(scope, uri, workdir)
    readable = {p for p in scope.readable if not _inside(Path(p), workdir)}
    return Graph(run_target, readable, patterns)


def _pack(scope: Scope, uri: str, workdir: Path) -> str:
    """Store the graph as one local document (every remote document inlined)."""
    from cwltool.load_tool import default_loader
    from cwltool.pack import pack

    lc = _loading_context(scope)
    # (without a loader of its own, pack would read through schema-salad's default fetcher)
    packed = pack(lc, uri, loader=default_loader(lc.fetcher_constructor))
    # the packed copy must hold only what was checked: walk it again
    check_literals(scope, packed, uri, "in the packed workflow:")
    if scope.refusal is not None:
        raise scope.refusal
    target = workdir / "workflow" / "packed.cwl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(packed, indent=1), "utf-8")
    return f"{target}#main"


def _inside(path: Path, root: Path) -> bool:
    root = root.resolve()
    return path == root or root in path.parents


def _short(exc: BaseException, scope: Scope) -> str:
    text = " ".join(str(exc).split())
    text = text.replace(str(scope.inputs_dir.resolve()) + os.sep, "")
    return text[:800]


_IMPORTED = threading.Event()
_IMPORT_LOCK = threading.Lock()
_WARM_STARTED = threading.Event()


def import_cwltool() -> None:
    """Import cwltool and load its CWL schemas, once per process, under one lock
    (two threads importing it at once can see a half-initialised module)."""
    if _IMPORTED.is_set():
        return
    with _IMPORT_LOCK:
        if _IMPORTED.is_set():
            return
        import cwltool.load_tool  # noqa: F401
        import cwltool.pack  # noqa: F401
        import cwltool.workflow  # noqa: F401
        from cwltool import process

        for version in ("v1.2", "v1.1", "v1.0"):
            process.get_schema(version)
        _IMPORTED.set()


def warm_up() -> None:
    """Import cwltool in the background (a few seconds once per process), so
    that the first submission does not pay for it."""
    if _WARM_STARTED.is_set():
        return
    _WARM_STARTED.set()

    def load() -> None:
        try:
            import_cwltool()
        except Exception:  # noqa: BLE001 - the first submission imports it instead
            logger.exception("could not preload cwltool")

    threading.Thread(target=load, name="cwl-warm-up", daemon=True).start()
