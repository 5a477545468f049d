"""Every access decision of the node, in one place.

``Caller`` is who is asking (built once per request from the bearer token by
``server.auth.tokens.caller_from_request``). The APIs ask these functions and
never decide themselves:

* ``check_token``: a token that was presented but rejected is a 401, never
  an anonymous caller (fail closed);
* ``require_caller`` and ``anonymous_allowed``: who may use an API that keeps
  things per caller (WES), and the anonymous policy;
* ``owner_access``: a WES run or output is its submitter's only (404 to
  anyone else);
* ``authorize`` / ``authorize_dataset``: may the caller read a dataset's data
  (401 without valid credentials, 403 without the grant), and until when;
* ``beacon_tier``: how much the Beacon tells the caller about a dataset.

``server.auth.audit.Decision`` writes the audit row of each decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from server.errors import InvalidAuthentication, PermissionDenied, ServiceError

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


# ------------------------------------------------------------------ callers
def check_token(caller: Caller) -> None:
    """401 for a token that was presented and rejected (the one place this is
    decided): such a caller is never treated as anonymous, and learns nothing,
    not even whether what it asked for exists."""
    if caller.error is not None:
        raise InvalidAuthentication(f"invalid bearer token: {caller.error}")


def anonymous_allowed(settings) -> bool:
    """The anonymous policy for what a caller owns (WES runs and their outputs):
    a node with no token issuer configured (``auth_issuers``, a development
    node) serves anonymous callers, who all share the one owner ``anonymous``;
    any other node needs a valid token."""
    return not settings.auth_issuers


def require_caller(caller: Caller, what: str = "this operation", *, anonymous: bool = False) -> str:
    """The caller's label (the owner of what it creates), or 401: for a rejected
    token always, for an anonymous caller unless ``anonymous`` is allowed."""
    check_token(caller)
    if not anonymous and not caller.authenticated:
        raise InvalidAuthentication(f"{what} requires authentication (a bearer token)")
    return caller.label


def owner_access(
    caller: Caller, owner: str | None, settings, missing: ServiceError, *, what: str
) -> str:
    """Allow the owner of a WES run or output (``owner``: the submitting caller's
    label; None when there is no such thing), returning its label.

    401 as ``require_caller`` under the anonymous policy; anyone else but the
    owner gets ``missing`` (a 404), exactly as for something that does not
    exist, so that its existence is not revealed.
    """
    label = require_caller(caller, what, anonymous=anonymous_allowed(settings))
    if owner is None or owner != label:
        raise missing
    return label


# ------------------------------------------------------------------ datasets
def authorize(
    caller: Caller, access: str, grant_value: str, *, what: str = "dataset"
) -> float | None:
    """Allow, returning when the access ends (``access_expires``), or raise 401
    (no or bad credentials) / 403 (valid but no grant)."""
    check_token(caller)
    if access not in ACCESS_LEVELS:
        raise PermissionDenied(f"{what} has an unknown access level")
    if caller.level_for(access, grant_value):
        return access_expires(caller, access)
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


def grant_value_of(dataset) -> str:
    """The ControlledAccessGrants value that opens ``dataset`` (default: its id)."""
    return getattr(dataset, "grant_value", "") or dataset.id


def authorize_dataset(caller: Caller, dataset, *, what: str = "dataset") -> float | None:
    """``authorize`` for a ``Dataset`` row (its access level and grant value)."""
    return authorize(caller, dataset.access, grant_value_of(dataset), what=what)


def can_read_dataset(caller: Caller, dataset) -> bool:
    return can_read(caller, dataset.access, grant_value_of(dataset))


# ------------------------------------------------------------------ Beacon
BOOLEAN, COUNT, RECORD = "boolean", "count", "record"
GRANULARITIES = (BOOLEAN, COUNT, RECORD)


def beacon_tier(caller: Caller, dataset) -> str:
    """The most detailed Beacon answer ``caller`` may get about ``dataset``.

    * ``record``: the caller may read the dataset's data anyway (public dataset,
      registered dataset with registered access, controlled dataset with its grant);
    * ``count``: an authenticated caller with registered access asking about a
      controlled dataset it holds no grant for;
    * ``boolean``: everyone else (including anonymous callers on non-public data).

    A presented-but-rejected token raises ``InvalidAuthentication`` (401): it
    never degrades to the anonymous tier.
    """
    check_token(caller)
    if can_read_dataset(caller, dataset):
        return RECORD
    if dataset.access == "controlled" and caller.level_for("registered", "\0no-grant"):
        return COUNT
    return BOOLEAN


def beacon_resolves_people(tier: str) -> bool:
    """Whether a caller at ``tier`` for a dataset may address one of its
    individuals, biosamples, runs or analyses by id. Only the record tier may:
    below it, such a request answers as if the id did not exist, so that it is
    no oracle on a named person (``server.beacon.tiers``)."""
    return tier == RECORD
