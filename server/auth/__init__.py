"""The one authorisation decision every API calls.

``Caller`` is who is asking (built once per request from the bearer token by
``server.auth.tokens.caller_from_request``); ``authorize`` decides whether that
caller may read a dataset, raising ``InvalidAuthentication`` (401) or
``PermissionDenied`` (403). It fails closed: a token that was presented but
could not be validated is never treated as anonymous.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from server.errors import InvalidAuthentication, PermissionDenied

ACCESS_LEVELS = ("public", "registered", "controlled")


@dataclass(frozen=True)
class Caller:
    subject: str | None = None  # "issuer|sub"-style id; None when anonymous
    issuer: str | None = None
    # ControlledAccessGrants values held through valid visas
    controlled: frozenset[str] = field(default_factory=frozenset)
    registered: bool = False  # ResearcherStatus / AcceptedTermsAndPolicies
    expires: float | None = None  # min over the token and the visas used
    error: str | None = None  # a token was presented and rejected: why

    @property
    def authenticated(self) -> bool:
        return self.subject is not None and self.error is None

    @property
    def label(self) -> str:
        """How the caller appears in logs and the audit trail (never a token)."""
        return self.subject or "anonymous"

    def level_for(self, access: str, grant_value: str) -> bool:
        if access == "public":
            return True
        if not self.authenticated or (self.expires is not None and self.expires < time.time()):
            return False
        if access == "registered":
            return self.registered or grant_value in self.controlled
        if access == "controlled":
            return grant_value in self.controlled
        return False  # unknown level: fail closed


ANONYMOUS = Caller()


def authorize(caller: Caller, access: str, grant_value: str, *, what: str = "dataset") -> None:
    """Allow, or raise 401 (no or bad credentials) / 403 (valid but no grant)."""
    if caller.error is not None:
        raise InvalidAuthentication(f"invalid bearer token: {caller.error}")
    if access not in ACCESS_LEVELS:
        raise PermissionDenied(f"{what} has an unknown access level")
    if caller.level_for(access, grant_value):
        return
    if caller.authenticated and caller.expires is not None and caller.expires < time.time():
        raise InvalidAuthentication("the bearer token (or a visa it relies on) has expired")
    if not caller.authenticated:
        raise InvalidAuthentication(f"{what} requires authentication (a bearer token)")
    raise PermissionDenied(f"caller holds no grant for this {what}")


def access_expires(caller: Caller, access: str) -> float | None:
    """When an access ``authorize`` allowed ends (unix time), or None if never.

    Public data needs no credential, so its access does not end; any other
    level ends at the caller's ``expires``: the earliest expiry of the token
    and the visas used. Signed data URLs (``server.auth.urls.sign_url``)
    expire no later than this, so a URL dies with the grant behind it.
    """
    if access == "public":
        return None
    return caller.expires


def can_read(caller: Caller, access: str, grant_value: str) -> bool:
    """The same decision, as a boolean (for filtering lists, Beacon tiers)."""
    try:
        authorize(caller, access, grant_value)
    except (InvalidAuthentication, PermissionDenied):
        return False
    return True


# ------------------------------------------------------------------ helpers
def grant_value_of(dataset) -> str:
    """The ControlledAccessGrants value that opens ``dataset`` (default: its id)."""
    return getattr(dataset, "grant_value", "") or dataset.id


def authorize_dataset(caller: Caller, dataset, *, what: str = "dataset") -> None:
    """``authorize`` for a ``Dataset`` row (its access level and grant value)."""
    authorize(caller, dataset.access, grant_value_of(dataset), what=what)


def can_read_dataset(caller: Caller, dataset) -> bool:
    return can_read(caller, dataset.access, grant_value_of(dataset))


GRANULARITIES = ("boolean", "count", "record")


def beacon_granularity(caller: Caller, dataset) -> str:
    """The most detailed Beacon answer ``caller`` may get about ``dataset``.

    * ``record``: the caller may read the dataset's data anyway (public dataset,
      registered dataset with registered access, controlled dataset with its grant);
    * ``count``: an authenticated caller with registered access asking about a
      controlled dataset it holds no grant for;
    * ``boolean``: everyone else (including anonymous callers on non-public data).

    A presented-but-rejected token raises ``InvalidAuthentication`` (401): it
    never degrades to the anonymous tier.
    """
    if caller.error is not None:
        raise InvalidAuthentication(f"invalid bearer token: {caller.error}")
    if can_read_dataset(caller, dataset):
        return "record"
    if dataset.access == "controlled" and caller.level_for("registered", "\0no-grant"):
        return "count"
    return "boolean"


def beacon_resolves_people(granularity: str) -> bool:
    """Whether a caller at ``granularity`` for a dataset may address one of its
    individuals, biosamples, runs or analyses by id. Only the record tier may:
    below it, such a request answers as if the id did not exist, so that it is
    no oracle on a named person (``server.beacon.tiers``)."""
    return granularity == "record"


def require_authenticated(caller: Caller, *, what: str = "this operation") -> None:
    """401 unless a valid token was presented (WES submission, listing own runs)."""
    if caller.error is not None:
        raise InvalidAuthentication(f"invalid bearer token: {caller.error}")
    if not caller.authenticated or (caller.expires is not None and caller.expires < time.time()):
        raise InvalidAuthentication(f"{what} requires authentication (a bearer token)")
