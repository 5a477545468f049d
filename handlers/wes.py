"""WES 1.1 handlers: thin adapters from Connexion to ``server.wes.service``."""

from __future__ import annotations

import flask

from server.errors import ServiceError
from server.web.context import current_caller, node
from server.wes import graph, service

graph.warm_up()  # cwltool's loader checks every submission; load it before the first

FIELDS = (
    "workflow_params",
    "workflow_type",
    "workflow_type_version",
    "tags",
    "workflow_engine",
    "workflow_engine_version",
    "workflow_engine_parameters",
    "workflow_url",
)
MAX_FIELD = 4 * 1024 * 1024


def _audited(action: str, fn, *args, run_id: str = "", query: dict | None = None):
    n = node()
    caller = current_caller()
    try:
        result = fn(n.settings, n.db, caller, *args)
    except ServiceError as exc:
        n.audit(
            api="wes",
            action=action,
            object_id=run_id,
            query=query or {},
            outcome="denied" if exc.status in (401, 403, 404) else "error",
            status=exc.status,
            caller=caller,
        )
        raise
    if action in ("submit", "cancel"):
        n.audit(
            api="wes",
            action=action,
            object_id=run_id or result.get("run_id", ""),
            query=query or {},
            outcome="granted",
            caller=caller,
        )
    return result


def get_service_info():
    n = node()
    return service.service_info(n.settings, n.db)


def list_runs(page_size=None, page_token=None, state=None, tags=None):
    return _audited("list", service.list_runs, page_size, page_token, state, tags)


def _form() -> dict:
    """Form fields, whether sent as plain fields or as file parts (as some clients do)."""
    form: dict = {}
    for name in FIELDS:
        if name in flask.request.form:
            form[name] = flask.request.form[name]
        elif name in flask.request.files:
            data = flask.request.files[name].read(MAX_FIELD + 1)
            if len(data) > MAX_FIELD:
                from server.errors import PayloadTooLarge

                raise PayloadTooLarge(f"{name} is too large")
            form[name] = data.decode("utf-8", "replace")
    return form


def run_workflow(body=None, **_kwargs):
    form = _form()
    files = [
        (f.filename or "", f.stream) for f in flask.request.files.getlist("workflow_attachment")
    ]
    query = {
        k: form.get(k)
        for k in ("workflow_type", "workflow_type_version", "workflow_url", "workflow_engine")
        if form.get(k)
    }
    query["attachments"] = len(files)
    return _audited("submit", service.submit_run, form, files, query=query)


def get_run_log(run_id):
    return _audited("get", service.get_run_log, run_id, run_id=run_id)


def get_run_status(run_id):
    return _audited("status", service.get_run_status, run_id, run_id=run_id)


def cancel_run(run_id):
    return _audited("cancel", service.cancel_run, run_id, run_id=run_id)


def list_tasks(run_id, page_size=None, page_token=None):
    return _audited("tasks", service.list_tasks, run_id, page_size, page_token, run_id=run_id)


def get_task(run_id, task_id):
    return _audited("task", service.get_task, run_id, task_id, run_id=run_id)
