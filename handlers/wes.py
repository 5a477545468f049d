"""WES 1.1 handlers: thin adapters from Connexion to ``server.wes.service``."""

from __future__ import annotations

import flask

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


def _call(fn, *args):
    n = node()
    return fn(n.settings, n.db, current_caller(), *args)


def get_service_info():
    n = node()
    return service.service_info(n.settings, n.db)


def list_runs(page_size=None, page_token=None, state=None, tags=None):
    return _call(service.list_runs, page_size, page_token, state, tags)


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
    return _call(service.submit_run, form, files)


def get_run_log(run_id):
    return _call(service.get_run_log, run_id)


def get_run_status(run_id):
    return _call(service.get_run_status, run_id)


def cancel_run(run_id):
    return _call(service.cancel_run, run_id)


def list_tasks(run_id, page_size=None, page_token=None):
    return _call(service.list_tasks, run_id, page_size, page_token)


def get_task(run_id, task_id):
    return _call(service.get_task, run_id, task_id)
