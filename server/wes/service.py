"""WES 1.1 operations, framework-free: each takes the settings, the database and
the ``Caller`` and returns the response document (or raises ``server.errors``).

Who may use WES: when an issuer is configured (``auth_issuers``), only
authenticated callers; with no issuer (a development node) anonymous callers
too, all under the one owner ``anonymous``. A run belongs to the caller that
submitted it (``Caller.label``); any other caller gets 404 for it, exactly as
for a run that does not exist. Both rules are ``server.auth``'s
(``require_caller``, ``owner_access``); each operation writes its audit row
through ``server.auth.audit.Decision``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from server.auth import Caller, anonymous_allowed, owner_access, require_caller
from server.auth.audit import Decision
from server.db import Database
from server.errors import InvalidInput, NotFound
from server.settings import Settings
from server.storage import is_local
from server.wes import engines, graph, inputs, sandbox, states, store
from server.wes.tables import WesRun, WesTask

logger = logging.getLogger(__name__)

MAX_PAGE = 1000
DEFAULT_PAGE = 100


# ---------------------------------------------------------------- access
def _caller(settings: Settings, caller: Caller) -> str:
    """The owner label of a caller allowed to use WES, or 401."""
    return require_caller(caller, "WES", anonymous=anonymous_allowed(settings))


def _owned_run(settings: Settings, db: Database, caller: Caller, run_id: str) -> WesRun:
    run = store.get_run(db, run_id) if isinstance(run_id, str) and len(run_id) <= 64 else None
    missing = NotFound(f"run {run_id!r} not found")
    owner_access(caller, run.owner if run else None, settings, missing, what="WES")
    if run.state in states.ACTIVE:
        run = _reconcile_one(settings, db, run)
    return run


def _decision(
    db: Database,
    caller: Caller,
    action: str,
    run_id: str = "",
    *,
    query: dict | None = None,
    record_grant: bool = False,
) -> Decision:
    """The audit row of one operation. A run of another caller answers 404, as a
    missing one does: that 404 is a refusal too. Reads are recorded when refused
    or failed; submissions and cancellations always (``record_grant=True``)."""
    return Decision(
        db,
        caller,
        api="wes",
        action=action,
        object_id=run_id,
        query=query or {},
        refusals=(401, 403, 404),
        record_grant=record_grant,
    )


def _reconcile_one(settings: Settings, db: Database, run: WesRun) -> WesRun:
    """A read of an active run whose worker vanished closes it (never RUNNING forever)."""
    from server.wes.worker import cancel_cluster_jobs

    timeout = float(settings.wes_heartbeat_timeout)
    if store.worker_vanished(run.worker_id, run.heartbeat, timeout):
        store.reconcile(
            db, timeout, cancel_cluster_jobs=lambda ids: cancel_cluster_jobs(settings, ids)
        )
        return store.get_run(db, run.id) or run
    return run


# --------------------------------------------------------------- formatting
def iso(value: dt.datetime | None) -> str | None:
    value = store.aware(value)
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _url(settings: Settings, ident: str, caller: Caller | None = None) -> str:
    """A signed, short-lived URL for a run's log or output file, naming its
    owner and dying with the owner's token (and visas)."""
    from server.auth.urls import sign_url

    return sign_url(
        settings,
        "wes",
        ident,
        caller=caller.label if caller else None,
        expires=caller.expires if caller else None,
    )


def run_summary(run: WesRun) -> dict:
    return {
        "run_id": run.id,
        "state": run.state,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "tags": dict(run.tags or {}),
    }


def task_log(settings: Settings, run: WesRun, task: WesTask, caller: Caller | None = None) -> dict:
    log_url = _url(settings, f"{run.id}/tasks/{task.seq}", caller) if task.stderr_path else ""
    # the tool's own stdout where the engine recorded it (cwltool); else its log
    out_url = (
        _url(settings, f"{run.id}/tasks/{task.seq}/stdout", caller) if task.stdout_path else log_url
    )
    return {
        "id": str(task.seq),
        "name": task.name,
        "cmd": list(task.cmd or []),
        "start_time": iso(task.start_time),
        "end_time": iso(task.end_time),
        "stdout": out_url,
        "stderr": log_url,
        "exit_code": task.exit_code,
        "system_logs": list(task.system_logs or []),
        "tags": {},
    }


def _outputs(
    settings: Settings, run: WesRun, value: Any, drs_ids: dict | None, caller: Caller | None
) -> Any:
    """Output file locations become signed URLs served by the node; ``path``
    stays the file on the node's (cluster-shared) file system, for clients that
    run beside it (cwltest, toil-wes-cwl-runner on the cluster)."""
    outdir = str(Path(run.workdir) / "outputs")

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: walk(v) for k, v in value.items()}
        if value.get("class") in ("File", "Directory"):
            loc = str(value.get("location") or value.get("path") or "")
            local = loc.removeprefix("file://")
            if local.startswith(outdir + "/"):
                rel = local[len(outdir) + 1 :]
                if value.get("class") == "File":
                    out["location"] = _url(settings, f"{run.id}/outputs/{rel}", caller)
                    if drs_ids and rel in drs_ids:
                        from server.drs.service import self_uri

                        out["drs_uri"] = self_uri(settings, drs_ids[rel])
                else:
                    out["location"] = rel
                out["basename"] = value.get("basename") or rel.rsplit("/", 1)[-1]
                out["path"] = local
            else:
                out.pop("path", None)
        return out

    return walk(value)


def _drs_ids(db: Database, run: WesRun) -> dict:
    from server.drs.service import wes_outputs

    return wes_outputs(db, run.id)


def run_log(settings: Settings, db: Database, run: WesRun, caller: Caller | None = None) -> dict:
    tasks = store.get_tasks(db, run.pk)
    done = run.state in states.TERMINAL
    return {
        "run_id": run.id,
        "request": dict(run.request or {}),
        "state": run.state,
        "run_log": {
            "name": Path(run.workflow.partition("#")[0]).name,
            "cmd": list(run.cmd or []),
            "start_time": iso(run.start_time),
            "end_time": iso(run.end_time),
            "stdout": _url(settings, f"{run.id}/stdout", caller) if run.cmd else "",
            "stderr": _url(settings, f"{run.id}/stderr", caller) if run.cmd else "",
            "exit_code": run.exit_code,
            "system_logs": list(run.system_logs or []),
        },
        "task_logs_url": f"{settings.public_url.rstrip('/')}/ga4gh/wes/v1/runs/{run.id}/tasks",
        "task_logs": [task_log(settings, run, t, caller) for t in tasks],
        "outputs": (
            _outputs(settings, run, dict(run.outputs or {}), _drs_ids(db, run), caller)
            if done
            else {}
        ),
    }


# ---------------------------------------------------------------- pagination
def _page_key(settings: Settings) -> bytes:
    from server.auth.urls import signing_key

    return hmac.new(signing_key(settings), b"genomeport wes page token", hashlib.sha256).digest()


def make_token(settings: Settings, owner: str, last_pk: int) -> str:
    body = json.dumps({"o": owner, "k": last_pk}, separators=(",", ":")).encode()
    sig = hmac.new(_page_key(settings), body, hashlib.sha256).digest()[:16]
    return (
        base64.urlsafe_b64encode(body).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(sig).rstrip(b"=")
    ).decode()


def read_token(settings: Settings, owner: str, token: str) -> int:
    try:
        body_b64, sig_b64 = token.split(".")
        body = base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4))
        sig = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
        expect = hmac.new(_page_key(settings), body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(sig, expect):
            raise ValueError("bad signature")
        data = json.loads(body)
        if data["o"] != owner or not isinstance(data["k"], int):
            raise ValueError("token of another caller")
        return data["k"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidInput("page_token is not valid") from None


# ------------------------------------------------------------------ operations
def service_info(settings: Settings, db: Database) -> dict:
    from server.service_info import api_info

    info = api_info(settings, "wes")
    available = {}
    defaults = []
    for name, cls in engines.ENGINES.items():
        engine = cls(settings)
        if engine.available():
            available[name] = {"workflow_engine_version": [engine.version()]}
            defaults += engine_parameters(engine)
    info.update(
        {
            "workflow_type_versions": {
                t: {"workflow_type_version": list(v)}
                for t, v in engines.WORKFLOW_TYPE_VERSIONS.items()
            },
            "supported_wes_versions": ["1.1.0", "1.0.0"],
            "supported_filesystem_protocols": ["file", "http", "https", "drs"],
            "workflow_engine_versions": available,
            "default_workflow_engine_parameters": defaults,
            "system_state_counts": store.state_counts(db),
            "auth_instructions_url": f"{settings.public_url.rstrip('/')}/docs#authentication",
            "tags": {
                "default_workflow_engine": settings.wes_default_engine,
                "shipped_workflows": ",".join(inputs.shipped_workflows()),
            },
        }
    )
    # how every run is isolated and limited (server/wes/sandbox.py)
    info["sandbox"] = sandbox.describe(settings)
    info["tags"].update(
        {
            "sandbox": info["sandbox"]["kind"],
            **{f"limit_{k}": str(v) for k, v in info["sandbox"]["limits"].items() if v is not None},
        }
    )
    return info


def engine_parameters(engine: engines.Engine) -> list[dict]:
    """An engine's accepted ``workflow_engine_parameters``, as service-info lists
    them: the very names submit accepts, defaults written as JSON."""
    out = []
    for name, p in engine.params.items():
        if p.kind == "flag":
            kind = "boolean"
        elif isinstance(p.default, int) or _takes_int(p):
            kind = "integer"
        else:
            kind = "string"
        default = "" if p.default is None else _text(p.default)
        out.append(
            {"name": name, "type": kind, "default_value": default, "workflow_engine": engine.name}
        )
    return out


def _takes_int(p) -> bool:
    try:
        value = p.check("1")
    except (ValueError, TypeError):
        return False
    return isinstance(value, int) and not isinstance(value, bool)


LIST_SCAN = 500  # rows read per query when a tag filter applies


def _tag_filter(tags) -> dict[str, str | None]:
    wanted: dict[str, str | None] = {}
    for item in [tags] if isinstance(tags, str) else list(tags or []):
        if not isinstance(item, str) or not item:
            raise InvalidInput("tags: each filter is key:value or key")
        key, sep, value = item.partition(":")
        wanted[key] = value if sep else None
    return wanted


def list_runs(
    settings: Settings,
    db: Database,
    caller: Caller,
    page_size: int | None = None,
    page_token: str | None = None,
    state=None,
    tags=None,
) -> dict:
    """The caller's runs, newest first; optionally only those in ``state`` (one
    or several) and carrying every tag of ``tags`` (``key:value`` or ``key``).
    A page token belongs to its caller and its filters."""
    with _decision(db, caller, "list"):
        owner = _caller(settings, caller)
        size = DEFAULT_PAGE if page_size is None else int(page_size)
        if not 1 <= size <= MAX_PAGE:
            raise InvalidInput(f"page_size must be between 1 and {MAX_PAGE}")
        wanted_states = sorted(set([state] if isinstance(state, str) else list(state or [])))
        unknown = [s for s in wanted_states if s not in states.ALL and s != states.UNKNOWN]
        if unknown:
            raise InvalidInput(f"state: unknown state {unknown[0]!r}")
        wanted_tags = _tag_filter(tags)
        scope = owner
        if wanted_states or wanted_tags:
            filters = json.dumps([wanted_states, sorted(wanted_tags.items())]).encode()
            scope = owner + "\x00" + hashlib.sha256(filters).hexdigest()[:16]  # tokens stay short
        last = read_token(settings, scope, page_token) if page_token else None

        def matches(run: WesRun) -> bool:
            have = run.tags or {}
            return all(k in have and (v is None or have[k] == v) for k, v in wanted_tags.items())

        found: list[WesRun] = []
        batch_size = LIST_SCAN if wanted_tags else size + 1
        while len(found) <= size:
            q = sa.select(WesRun).where(WesRun.owner == owner)
            if wanted_states:
                q = q.where(WesRun.state.in_(wanted_states))
            if last is not None:
                q = q.where(WesRun.pk < last)
            with db.session() as s:
                batch = list(s.scalars(q.order_by(WesRun.pk.desc()).limit(batch_size)))
            for run in batch:
                last = run.pk
                if matches(run):
                    found.append(run)
                    if len(found) > size:
                        break
            if len(batch) < batch_size:
                break
        more = len(found) > size
        found = found[:size]
        return {
            "runs": [run_summary(r) for r in found],
            "next_page_token": make_token(settings, scope, found[-1].pk) if more else "",
        }


def _json_field(form: dict, name: str, default: Any, kind: type) -> Any:
    raw = form.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, (dict, list)):
        value = raw
    else:
        try:
            value = json.loads(raw)
        except ValueError:
            raise InvalidInput(f"{name} is not valid JSON") from None
    if not isinstance(value, kind):
        raise InvalidInput(f"{name} must be a JSON {'object' if kind is dict else kind.__name__}")
    return value


def submit_run(
    settings: Settings,
    db: Database,
    caller: Caller,
    form: dict,
    attachments: Sequence[tuple[str, BinaryIO]] = (),
    resolve_drs=None,
) -> dict:
    """Validate a RunRequest, store its files and record it QUEUED.

    Nothing is recorded, and no file is left behind, unless every check passes."""
    query = _submit_query(form, attachments)
    with _decision(db, caller, "submit", query=query, record_grant=True) as decision:
        owner = _caller(settings, caller)
        wtype = form.get("workflow_type")
        version = form.get("workflow_type_version")
        if not wtype or not version:
            raise InvalidInput("workflow_type and workflow_type_version are required")
        wtype = str(wtype).upper()
        if wtype not in engines.WORKFLOW_TYPE_VERSIONS:
            raise InvalidInput(f"workflow_type {wtype!r} is not supported (CWL)")
        if version not in engines.WORKFLOW_TYPE_VERSIONS[wtype]:
            raise InvalidInput(f"workflow_type_version {version!r} is not supported for {wtype}")
        params = _json_field(form, "workflow_params", {}, dict)
        tags = _json_field(form, "tags", {}, dict)
        if not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in tags.items()
        ):
            raise InvalidInput("tags must map strings to strings")
        tags = {k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}
        engine = engines.get_engine(settings, form.get("workflow_engine") or None)
        if not engine.available():
            raise InvalidInput(f"workflow_engine {engine.name!r} is not installed on this node")
        engine_params = engine.check_params(
            _json_field(form, "workflow_engine_parameters", {}, dict)
        )
        workflow_url = form.get("workflow_url")
        engine_version = form.get("workflow_engine_version")
        if engine_version not in (None, ""):
            have = engine.version()
            if str(engine_version) != have:
                raise InvalidInput(
                    f"workflow_engine_version {engine_version!r} is not available "
                    f"for {engine.name} (this node runs {have})"
                )

        run_id = str(uuid.uuid4())
        workdir = settings.effective_wes_work_dir / run_id
        inputs_dir = workdir / "inputs"
        inputs_dir.mkdir(parents=True)
        try:
            names = inputs.save_attachments(settings, inputs_dir, attachments)
            workflow = inputs.resolve_workflow(settings, workflow_url, inputs_dir, names)
            loaded = graph.load(settings, workflow, workdir, inputs_dir)
            readable = set(loaded.readable)
            staged: dict[str, str] = {}
            job = inputs.check_params(
                settings,
                params,
                inputs_dir,
                resolve_drs=resolve_drs
                or drs_resolver(settings, db, caller, readable=readable, staging=(workdir, staged)),
                attachments=names,
                fetch_remote=remote_fetcher(settings, workdir),
                readable=readable,
            )
            (workdir / "job.json").write_text(json.dumps(job), "utf-8")
            from server.wes import decrypted

            decrypted.record(workdir, staged)
            write_readable(workdir, readable, loaded.patterns)
            request = {
                "workflow_params": params,
                "workflow_type": wtype,
                "workflow_type_version": version,
                "tags": tags,
                "workflow_engine": engine.name,
                "workflow_engine_parameters": {k: _text(v) for k, v in engine_params.items()},
                "workflow_url": workflow_url,
            }
            if engine_version:
                request["workflow_engine_version"] = str(engine_version)
            store.create_run(
                db,
                id=run_id,
                owner=owner,
                request=request,
                tags=tags,
                engine=engine.name,
                engine_params=engine_params,
                workdir=str(workdir),
                workflow=loaded.workflow,
            )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        decision.object_id = run_id
        return {"run_id": run_id}


def _submit_query(form: dict, attachments: Sequence) -> dict:
    """What the audit row of a submission says about it (no parameter values)."""
    fields = ("workflow_type", "workflow_type_version", "workflow_url", "workflow_engine")
    return {k: form.get(k) for k in fields if form.get(k)} | {"attachments": len(attachments)}


def _text(value: Any) -> str:
    """A parameter value as a WES string: strings as they are, booleans and
    numbers in their JSON spelling (``true``, ``60``), never Python's."""
    return value if isinstance(value, str) else json.dumps(value)


def remote_fetcher(settings: Settings, workdir: Path):
    """Fetch an ``http(s)`` input into ``<run>/fetched/<host>/<path>`` (siblings
    stay siblings, so an index fetched beside its file is found by pattern)."""
    from urllib.parse import unquote, urlsplit

    from server.wes import remote

    def fetch(url: str) -> str:
        parts = urlsplit(url)
        rel = unquote(parts.path).strip("/") or "index"
        try:
            name = inputs.check_attachment_name(rel)
        except InvalidInput:
            raise InvalidInput(f"workflow_params: {url!r}: unsafe path for a local copy") from None
        target = (workdir / "fetched" / (parts.hostname or "host")).joinpath(*name.parts)
        if target.is_file():
            return str(target)
        _, body = remote.fetch(
            settings, url, what="workflow_params", limit=settings.wes_max_fetch_bytes
        )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        except OSError:
            raise InvalidInput(
                f"workflow_params: {url!r} clashes with another fetched input"
            ) from None
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        return str(target)

    return fetch


def write_readable(workdir: Path, paths: set[str], patterns: set[str] = frozenset()) -> Path:
    """``<run>/readable.json``: the server paths outside the run directory this
    run may read (the sandbox mounts exactly these, read-only).

    Each file comes with its secondary files: the graph's literal
    ``secondaryFiles`` patterns applied to it, and its siblings that extend its
    name (``x.bam`` -> ``x.bam.bai``), as cwltool looks for them next to it."""
    graph.import_cwltool()
    from cwltool.builder import substitute

    root = workdir.resolve()
    out: set[str] = set()
    for raw in paths:
        path = Path(raw).resolve()
        if path == root or root in path.parents:
            continue
        out.add(str(path))
        if not path.is_file():
            continue
        extra = {path.parent / substitute(path.name, p.rstrip("?")) for p in patterns}
        with contextlib.suppress(OSError):
            extra |= {p for p in path.parent.iterdir() if p.name.startswith(path.name + ".")}
        out |= {str(p) for p in extra if p.exists() and not (p == root or root in p.parents)}
    target = workdir / "readable.json"
    target.write_text(json.dumps(sorted(out), indent=1), "utf-8")
    return target


def drs_resolver(settings: Settings, db: Database, caller: Caller, *, readable=None, staging=None):
    """``drs://<this node>/<id>`` -> the local path of a registered file or of
    one of the caller's own WES outputs (``wes~<hex>``), for a caller allowed to
    read it (401/403 otherwise, audited by DRS; 404 for an object that does not
    exist or is another caller's). The file and its index join ``readable`` (a
    set of paths, created when not given).

    ``staging`` is ``(run directory, staged files)``: a Crypt4GH-archived
    file maps to a path in that directory, recorded among the staged files
    (target -> archive location), where the worker decrypts it for the run
    alone (``server.wes.decrypted``)."""
    from urllib.parse import urlsplit

    readable = set() if readable is None else readable

    def resolve(uri: str) -> str:
        from server.drs.service import DrsContext, public_host
        from server.drs.service import resolve as drs_resolve

        parts = urlsplit(uri)
        if (parts.hostname or "") != public_host(settings):
            raise InvalidInput(f"workflow_params: {uri!r} is not an object of this node")
        obj = drs_resolve(
            DrsContext(settings, db, caller), parts.path.lstrip("/"), action="wes-input"
        )
        extra = []
        if obj.kind == "file":
            location = obj.file.location
            extra = [obj.file.index_location] if obj.file.index_location else []
        elif obj.kind == "index":
            location = obj.file.index_location
        elif obj.kind == "wes":
            location = obj.wes.location
        else:
            raise InvalidInput(f"workflow_params: {uri!r} is not a single file")
        if not is_local(location):
            raise InvalidInput(f"workflow_params: {uri!r} is not on this node's file system")
        from server.storage import is_crypt4gh

        if is_crypt4gh(location):
            if staging is None:
                raise InvalidInput(f"workflow_params: {uri!r} is encrypted; not available here")
            workdir, staged = staging
            from server.wes import decrypted

            for archived in (location, *extra):
                if is_crypt4gh(archived):
                    staged[str(decrypted.target_for(workdir, archived))] = archived
            return str(decrypted.target_for(workdir, location))
        readable.update([location, *(e for e in extra if is_local(e))])
        return location

    return resolve


def get_run_log(settings: Settings, db: Database, caller: Caller, run_id: str) -> dict:
    with _decision(db, caller, "get", run_id):
        return run_log(settings, db, _owned_run(settings, db, caller, run_id), caller)


def get_run_status(settings: Settings, db: Database, caller: Caller, run_id: str) -> dict:
    with _decision(db, caller, "status", run_id):
        run = _owned_run(settings, db, caller, run_id)
        return {"run_id": run.id, "state": run.state}


def cancel_run(settings: Settings, db: Database, caller: Caller, run_id: str) -> dict:
    with _decision(db, caller, "cancel", run_id, record_grant=True):
        run = _owned_run(settings, db, caller, run_id)
        store.request_cancel(db, run.id)
        return {"run_id": run.id}


def list_tasks(
    settings: Settings,
    db: Database,
    caller: Caller,
    run_id: str,
    page_size: int | None = None,
    page_token: str | None = None,
) -> dict:
    with _decision(db, caller, "tasks", run_id):
        run = _owned_run(settings, db, caller, run_id)
        scope = f"{caller.label}\x00{run.id}"
        size = DEFAULT_PAGE if page_size is None else int(page_size)
        if not 1 <= size <= MAX_PAGE:
            raise InvalidInput(f"page_size must be between 1 and {MAX_PAGE}")
        after = read_token(settings, scope, page_token) if page_token else 0
        tasks = store.get_tasks(db, run.pk, after_seq=after, limit=size + 1)
        more = len(tasks) > size
        tasks = tasks[:size]
        return {
            "task_logs": [task_log(settings, run, t, caller) for t in tasks],
            "next_page_token": make_token(settings, scope, tasks[-1].seq) if more else "",
        }


def get_task(settings: Settings, db: Database, caller: Caller, run_id: str, task_id: str) -> dict:
    with _decision(db, caller, "task", run_id):
        run = _owned_run(settings, db, caller, run_id)
        if not (isinstance(task_id, str) and task_id.isdigit() and len(task_id) < 10):
            raise NotFound(f"task {task_id!r} not found")
        tasks = store.get_tasks(db, run.pk, seq=int(task_id))
        if not tasks:
            raise NotFound(f"task {task_id!r} not found")
        return task_log(settings, run, tasks[0], caller)


# ------------------------------------------------------------- files (data plane)
def resolve_file(settings: Settings, db: Database, ident: str) -> Path:
    """The local file behind a signed ``wes`` ident: ``<run>/stdout``,
    ``<run>/stderr``, ``<run>/tasks/<n>`` or ``<run>/outputs/<path>``."""
    run_id, _, rest = ident.partition("/")
    run = store.get_run(db, run_id)
    if run is None:
        raise NotFound("no such run")
    workdir = Path(run.workdir).resolve()
    if rest in ("stdout", "stderr"):
        path = workdir / f"{rest}.txt"
    elif rest.startswith("tasks/") and rest[6:].removesuffix("/stdout").isdigit():
        tasks = store.get_tasks(db, run.pk, seq=int(rest[6:].removesuffix("/stdout")))
        which = "stdout_path" if rest.endswith("/stdout") else "stderr_path"
        if not tasks or not getattr(tasks[0], which):
            raise NotFound("no such task log")
        path = Path(getattr(tasks[0], which))
    elif rest.startswith("outputs/"):
        rel = inputs.check_attachment_name(rest[len("outputs/") :])
        path = (workdir / "outputs").joinpath(*rel.parts).resolve()
        if not str(path).startswith(str(workdir / "outputs") + os.sep):
            raise NotFound("no such output")
    else:
        raise NotFound("no such file")
    # The run directory is written by the run's own tools: a name there may have
    # become a link to a file of the node. Serve only what stays inside it.
    path = path.resolve()
    if not path.is_relative_to(workdir) or not path.is_file():
        raise NotFound("no such file")
    return path
