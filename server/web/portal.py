"""``/portal``: the data access pages for people, server-rendered, no JavaScript.

A researcher signs in, applies for a controlled dataset (accepting its
data-use conditions) and follows the application; a member of the dataset's
data access committee reviews and decides it; an operator
(``GENOMEPORT_ACCESS_OPERATORS``) sees and revokes every grant. Every rule is
``server.auth.access``'s, applied to the caller the session's token makes,
exactly as on the ``/access`` API.

Sign-in is the OIDC authorization code flow with PKCE against the configured
issuer (``server.auth.oidc``). The pending sign-in (``state``, code verifier)
and then the session (the access token and a CSRF token) are kept in cookies
signed with the node's signing key (itsdangerous), ``HttpOnly``,
``SameSite=Lax``, path ``/portal``, ``Secure`` on an https node; every form
that changes something carries the session's CSRF token. A session whose
token no longer validates is signed out. Pages load nothing from elsewhere
(the Content-Security-Policy allows only the node itself and inline styles).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from itsdangerous import BadSignature, URLSafeTimedSerializer

from server import duo, errors
from server.auth import Caller, access, oidc
from server.auth.roles import datasets_with_role, token_subject
from server.auth.tokens import caller_from_request
from server.auth.urls import signing_key
from server.web.landing import TEMPLATES

logger = logging.getLogger(__name__)

PREFIX = "/portal"
SESSION, LOGIN = "gp_session", "gp_login"
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 600
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
_APP = re.compile(r"^/applications/(\d{1,9})(/decision|/resubmit)?$")
_REVOKE = re.compile(r"^/grants/(\d{1,9})/revoke$")


@dataclass
class Page:
    status: int = 200
    body: bytes = b""
    headers: list = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str  # below /portal
    query: dict
    form: dict  # name -> list of values
    cookies: dict


def _first(values: dict, name: str) -> str:
    got = values.get(name) or [""]
    return got[0]


class Portal:
    """The ASGI app of every path under ``/portal``."""

    def __init__(self, settings, db):
        self.settings, self.db = settings, db
        self.signer = URLSafeTimedSerializer(signing_key(settings), salt="genomeport-portal")
        self.secure = settings.public_url.startswith("https://")

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        if scope["method"] == "POST":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > self.settings.max_body_bytes:
                    break
                if not message.get("more_body"):
                    break
        cookies = SimpleCookie()
        raw = dict(scope.get("headers") or []).get(b"cookie", b"").decode("latin-1")
        try:
            cookies.load(raw)
        except Exception:  # noqa: BLE001 - a malformed cookie header is no session
            cookies = SimpleCookie()
        request = Request(
            scope["method"],
            scope["path"][len(PREFIX) :] or "/",
            {
                k: v[0]
                for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()
            },
            parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True),
            {k: m.value for k, m in cookies.items()},
        )
        page = await asyncio.to_thread(self.handle, request)
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(page.body)).encode()),
            (b"cache-control", b"no-store"),
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            *[(k.encode(), v.encode()) for k, v in page.headers],
        ]
        await send({"type": "http.response.start", "status": page.status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": page.body if scope["method"] != "HEAD" else b""}
        )

    # ------------------------------------------------------------ plumbing
    def _cookie(self, name: str, value: str, max_age: int) -> tuple[str, str]:
        parts = [
            f"{name}={value}",
            f"Path={PREFIX}",
            f"Max-Age={max_age}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if self.secure:
            parts.append("Secure")
        return ("set-cookie", "; ".join(parts))

    def _redirect(self, where: str, *cookies) -> Page:
        return Page(303, b"", [("location", where), *cookies])

    def _session(self, request: Request) -> dict | None:
        raw = request.cookies.get(SESSION)
        if not raw:
            return None
        try:
            data = self.signer.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and "token" in data and "csrf" in data else None

    def _caller(self, session: dict | None) -> Caller | None:
        if session is None:
            return None
        caller = caller_from_request(self.settings, f"Bearer {session['token']}", db=self.db)
        return caller if caller.authenticated else None

    def _render(self, template: str, status: int = 200, **context) -> Page:
        page = TEMPLATES.get_template(template).render(labels=duo.LABELS, **context)
        return Page(status, page.encode())

    # ------------------------------------------------------------ routes
    def handle(self, request: Request) -> Page:
        session = self._session(request)
        caller = self._caller(session)
        context = {
            "caller": caller,
            "subject": token_subject(caller) if caller else "",
            "csrf": session["csrf"] if session and caller else "",
        }
        try:
            return self._route(request, session, caller, context)
        except errors.ServiceError as exc:
            status = exc.status if exc.status < 500 or exc.status == 503 else 500
            message = str(exc) if status < 500 or status == 503 else "internal error"
            return self._render(
                "portal_error.html", status, title="Not possible", message=message, **context
            )

    def _route(self, request: Request, session, caller, context) -> Page:
        path, method = request.path.rstrip("/") or "/", request.method
        redirect_uri = self.settings.public_url.rstrip("/") + PREFIX + "/callback"
        if path == "/" and method in ("GET", "HEAD"):
            return self._home(caller, context)
        if path == "/login" and method == "GET":
            login = oidc.start(self.settings, redirect_uri)
            cookie = self.signer.dumps({"state": login.state, "verifier": login.verifier})
            return self._redirect(login.url, self._cookie(LOGIN, cookie, LOGIN_SECONDS))
        if path == "/callback" and method == "GET":
            return self._callback(request, redirect_uri)
        if method == "POST" and (
            caller is None
            or not secrets.compare_digest(_first(request.form, "csrf"), session["csrf"])
        ):
            raise errors.PermissionDenied("the form is out of date: sign in and try again")
        if path == "/logout" and method == "POST":
            return self._redirect(PREFIX, self._cookie(SESSION, "", 0))
        if caller is None:
            return self._redirect(PREFIX + "/login")
        if path == "/apply":
            return self._apply(request, caller, context)
        if path == "/applications" and method == "GET":
            listed = access.list_applications(self.db, self.settings, caller)
            return self._render(
                "portal_applications.html", title="Applications", **listed, **context
            )
        if match := _APP.match(path):
            return self._application(request, caller, context, int(match[1]), match[2])
        if path == "/grants" and method == "GET":
            grants = access.list_grants(self.db, self.settings, caller)
            return self._render(
                "portal_grants.html",
                title="Grants",
                dac=datasets_with_role(self.db, caller, "dac"),
                operator=access.is_operator(self.settings, caller),
                **grants,
                **context,
            )
        if (match := _REVOKE.match(path)) and method == "POST":
            access.revoke(
                self.db, self.settings, caller, int(match[1]), {"comment": "revoked on the pages"}
            )
            return self._redirect(PREFIX + "/grants")
        raise errors.NotFound("no such page")

    def _home(self, caller, context) -> Page:
        entry = None
        try:
            entry = oidc.issuer_entry(self.settings)["issuer"]
        except errors.ServiceError:
            entry = "none configured"
        return self._render(
            "portal_home.html",
            title="Data access",
            datasets=access.datasets_open_for_application(self.db),
            issuer=entry,
            dac=sorted(datasets_with_role(self.db, caller, "dac")) if caller else [],
            operator=bool(caller) and access.is_operator(self.settings, caller),
            **context,
        )

    def _callback(self, request: Request, redirect_uri: str) -> Page:
        try:
            pending = self.signer.loads(request.cookies.get(LOGIN, ""), max_age=LOGIN_SECONDS)
        except BadSignature:
            raise errors.InvalidAuthentication("no sign-in is pending: start again") from None
        state = request.query.get("state", "")
        if not state or not secrets.compare_digest(state, str(pending.get("state", ""))):
            raise errors.InvalidAuthentication("the sign-in answer does not match its request")
        if "code" not in request.query:
            raise errors.InvalidAuthentication("the issuer refused the sign-in")
        token = oidc.finish(self.settings, redirect_uri, request.query["code"], pending["verifier"])
        caller = caller_from_request(self.settings, f"Bearer {token}", db=self.db)
        if not caller.authenticated:
            raise errors.InvalidAuthentication(f"the sign-in token is not accepted: {caller.error}")
        session = self.signer.dumps({"token": token, "csrf": secrets.token_urlsafe(24)})
        return self._redirect(
            PREFIX, self._cookie(SESSION, session, SESSION_SECONDS), self._cookie(LOGIN, "", 0)
        )

    def _form_body(self, form: dict) -> dict:
        return {
            "title": _first(form, "title"),
            "institution": _first(form, "institution"),
            "purpose": [t for t in form.get("purpose", []) if t],
            "accepted_terms": [t for t in form.get("accepted_terms", []) if t],
        }

    def _apply(self, request: Request, caller, context) -> Page:
        if request.method == "POST":
            body = self._form_body(request.form) | {"dataset": _first(request.form, "dataset")}
            app = access.apply(self.db, self.settings, caller, body)
            return self._redirect(f"{PREFIX}/applications/{app['id']}")
        return self._render(
            "portal_apply.html",
            title="Apply for access",
            datasets=access.datasets_open_for_application(self.db),
            purposes=access.PURPOSES,
            **context,
        )

    def _application(self, request: Request, caller, context, app_id: int, action) -> Page:
        if request.method == "POST" and action == "/decision":
            days = _first(request.form, "expires_in_days")
            body = {
                "decision": _first(request.form, "decision"),
                "comment": _first(request.form, "comment"),
            }
            if body["decision"] == "approve":
                body["expires_in_days"] = int(days) if days.isdigit() else days
            access.decide(self.db, self.settings, caller, app_id, body)
            return self._redirect(f"{PREFIX}/applications/{app_id}")
        if request.method == "POST" and action == "/resubmit":
            access.update(self.db, self.settings, caller, app_id, self._form_body(request.form))
            return self._redirect(f"{PREFIX}/applications/{app_id}")
        if request.method != "GET" or action:
            raise errors.NotFound("no such page")
        app = access.get_application(self.db, self.settings, caller, app_id)
        own = app["applicant"] == caller.label
        dac = datasets_with_role(self.db, caller, "dac")
        return self._render(
            "portal_application.html",
            title=f"Application {app_id}: {app['title']}",
            app=app,
            own=own,
            can_decide=not own and app["dataset"] in dac and app["state"] == "submitted",
            max_days=self.settings.access_max_days,
            **context,
        )
