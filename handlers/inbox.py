"""Inbox handlers (thin: build the context, call server.inbox.service)."""

from __future__ import annotations

from server.c4gh.keys import public_key_pem
from server.inbox import service
from server.web.context import current_caller, node


def _ctx() -> service.Context:
    n = node()
    return service.Context(n.settings, n.db, current_caller())


def get_public_key():
    return public_key_pem(node().settings), 200, {"Content-Type": "text/plain"}


def list_uploads():
    return service.list_uploads(_ctx())


def create_upload(body=None):
    return service.create_upload(_ctx(), body), 201


def get_upload(upload_id: str):
    return service.get_upload(_ctx(), upload_id)


def put_chunk(upload_id: str, offset: int, body=None):
    return service.put_chunk(_ctx(), upload_id, offset, body or b"")


def complete_upload(upload_id: str):
    return service.complete(_ctx(), upload_id)
