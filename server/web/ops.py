"""ASGI middleware in front of Connexion: request ids, access logs, metrics,
health probes, the OpenAPI documents, the request-body size cap and the last
line of error handling.

These run for every request, including the raw data plane, and never touch
the Flask adapter:

- a path with a control character (``%00``-``%1F``, ``%7F``) is a 400: no
  identifier of any API contains one, and Starlette's mounts do not match
  such paths, so they would otherwise reach Flask without their operation;
  so is a NUL (``%00``) in the query string (PostgreSQL cannot store it);
- ``<base>/openapi.json`` serves each document as written (``$ref`` kept, so
  recursive schemas such as DRS ``ContentsObject`` serialise);
- an exception that escapes every inner layer before the response has
  started is answered in the API's own error shape: 503 with ``Retry-After``
  when the database is unavailable, 500 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from server import errors
from server.logging import request_id_var
from server.web.apis import api_for_path
from server.web.docs import Pages
from server.web.errors import as_service_error, error_body

logger = logging.getLogger("genomeport.access")

REQUESTS = Counter("genomeport_requests_total", "HTTP requests", ["api", "method", "status"])
LATENCY = Histogram("genomeport_request_seconds", "HTTP request latency", ["api"])
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def openapi_documents(apis, openapi_dir) -> dict[str, bytes]:
    """``{"<base>/openapi.json": JSON bytes}`` for each ``server.web.apis.Api``.

    The node's service-info document shares the root base path with htsget;
    ``/openapi.json`` is htsget's, as it was when Connexion served the documents.
    """
    import yaml

    chosen: dict[str, tuple[str, str]] = {}
    for api in apis:
        document, base_path = api.document, api.base_path
        path = f"{base_path}/openapi.json"
        if path not in chosen or chosen[path][0] == "service-info.yaml":
            chosen[path] = (document, base_path)
    served: dict[str, bytes] = {}
    for path, (document, base_path) in chosen.items():
        spec = yaml.safe_load((openapi_dir / document).read_text())
        spec["servers"] = [{"url": base_path or "/"}]
        served[path] = json.dumps(spec, default=str).encode()
    return served


async def _send_json(send, status: int, body: dict | list, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"access-control-allow-origin", b"*"),
            ]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": payload})


class OpsMiddleware:
    def __init__(self, app, settings, db, apis, openapi_dir):
        self.app = app
        self.settings = settings
        self.db = db
        self.documents = openapi_documents(apis, openapi_dir)
        self.pages = Pages(settings, db, apis, openapi_dir)  # / and /docs

    def body_limit(self, path: str) -> int:
        if path.startswith("/ga4gh/wes"):
            return self.settings.wes_max_attachments * self.settings.wes_max_attachment_bytes + (
                1 << 20
            )
        if path.startswith("/inbox/uploads/"):
            return self.settings.inbox_max_chunk_bytes + (1 << 10)
        return self.settings.max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not _RID.match(rid):
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        path = scope.get("path", "")
        method = scope.get("method", "")
        api = api_for_path(path).name
        status_holder = {"status": 500}
        started = time.perf_counter()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            if path == "/health/live":
                await _send_json(send_wrapper, 200, {"status": "ok"})
            elif path == "/health/ready":
                ok = await asyncio.to_thread(self.db.ping)  # a slow connect must not stall the loop
                await _send_json(
                    send_wrapper,
                    200 if ok else 503,
                    {
                        "status": "ok" if ok else "unavailable",
                        "database": "ok" if ok else "unreachable",
                    },
                    None
                    if ok
                    else [(b"retry-after", str(errors.ServiceUnavailable.retry_after).encode())],
                )
            elif path == "/metrics":
                payload = generate_latest()
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                    }
                )
                await send_wrapper({"type": "http.response.body", "body": payload})
            elif method in ("GET", "HEAD") and path in self.documents:
                payload = self.documents[path]
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"access-control-allow-origin", b"*"),
                        ],
                    }
                )
                await send_wrapper(
                    {"type": "http.response.body", "body": payload if method == "GET" else b""}
                )
            elif _CONTROL.search(path) or b"%00" in scope.get("query_string", b""):
                where = "path" if _CONTROL.search(path) else "query string"
                err = errors.InvalidInput(f"the request {where} contains a control character")
                body, status = error_body(err, path)
                await _send_json(send_wrapper, status, body)
            else:
                await self._last_resort(scope, receive, send_wrapper, headers, path)
        finally:
            elapsed = time.perf_counter() - started
            status = status_holder["status"]
            REQUESTS.labels(api, method, str(status)).inc()
            LATENCY.labels(api).observe(elapsed)
            logger.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _last_resort(self, scope, receive, send, headers, path):
        """Run the inner app; an exception before the response started gets an error body."""
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if page := self.pages.app_for(scope):
                await page(scope, receive, tracking_send)
            else:
                await self._guarded(scope, receive, tracking_send, headers, path)
        except Exception as exc:
            if started:
                raise
            err = as_service_error(exc)
            extra = []
            if isinstance(err, errors.ServiceUnavailable):
                logger.warning("%s %s -> 503: %s", scope.get("method"), path, type(exc).__name__)
                extra.append((b"retry-after", str(err.retry_after).encode()))
            else:
                logging.getLogger(__name__).error(
                    "unhandled error on %s %s", scope.get("method"), path, exc_info=exc
                )
            body, status = error_body(err, path)
            await _send_json(send, status, body, extra)

    async def _guarded(self, scope, receive, send, headers, path):
        limit = self.body_limit(path)
        raw_length = headers.get(b"content-length")
        if raw_length is not None:
            try:
                length = int(raw_length)
            except ValueError:
                length = -1
            if length < 0:
                body, status = error_body(errors.InvalidInput("invalid Content-Length"), path)
                await _send_json(send, status, body)
                return
            if length > limit:
                err = errors.PayloadTooLarge(
                    f"request body of {length} bytes exceeds the limit of {limit}"
                )
                body, status = error_body(err, path)
                await _send_json(send, status, body)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        # Chunked body without a length: read it (bounded) before routing.
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                err = errors.PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
                body, status = error_body(err, path)
                await _send_json(send, status, body)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        data = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
