"""Data access management handlers (thin: the caller, then server.auth.access)."""

from __future__ import annotations

from server.auth import access
from server.web.context import current_caller, node


def list_access_datasets():
    return {"datasets": access.datasets_open_for_application(node().db)}


def create_application(body=None):
    n = node()
    return access.apply(n.db, n.settings, current_caller(), body), 201


def list_applications(dataset: str | None = None, state: str | None = None):
    n = node()
    return access.list_applications(
        n.db, n.settings, current_caller(), dataset=dataset, state=state
    )


def get_application(application_id: int):
    n = node()
    return access.get_application(n.db, n.settings, current_caller(), application_id)


def update_application(application_id: int, body=None):
    n = node()
    return access.update(n.db, n.settings, current_caller(), application_id, body)


def decide_application(application_id: int, body=None):
    n = node()
    return access.decide(n.db, n.settings, current_caller(), application_id, body)


def list_grants(dataset: str | None = None):
    n = node()
    return access.list_grants(n.db, n.settings, current_caller(), dataset=dataset)


def revoke_grant(grant_id: int, body=None):
    n = node()
    return access.revoke(n.db, n.settings, current_caller(), grant_id, body)


def get_visas():
    n = node()
    return access.visas(n.db, n.settings, current_caller())


def get_jwks():
    return access.jwks(node().settings)
