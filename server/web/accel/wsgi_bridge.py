"""Run the Flask (WSGI) side of Connexion in a worker thread with one hop per response.

Connexion's ``FlaskApp`` bridges ASGI to WSGI with ``a2wsgi.WSGIMiddleware``,
which hands every response message (status line, each body chunk, the end)
back to the event loop separately and blocks the worker thread until the loop
has taken it. A small JSON answer costs three such round trips plus the
dispatch itself, each a pair of thread switches; on a busy two-core machine
that was a large share of a ticket's latency.

``OneHopWSGI`` instead lets the worker thread run the application and collect
its output; the loop sends it when the thread is done. Bodies larger than
``buffer_limit`` are not held in memory: the loop pulls further batches of at
most about ``buffer_limit`` bytes, one hop per batch, so a streamed answer
keeps its back-pressure. Handlers still never run on the event loop, so slow
database calls or long queries do not stall other connections (the data
plane in particular).

The request body is read lazily through ``a2wsgi``'s ``Body``, as before.
This relies on Connexion keeping its Flask bridge at
``FlaskApp._middleware_app.asgi_app`` and on ``a2wsgi.wsgi``'s ``Body`` and
``build_environ`` (``check_layout``).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from concurrent.futures import ThreadPoolExecutor

from a2wsgi.wsgi import Body, build_environ
from connexion.apps.flask import FlaskASGIApp

from server.web.accel import require

logger = logging.getLogger(__name__)

BUFFER_LIMIT = 1 << 20  # bytes collected in the thread before the loop starts sending


class _Exchange:
    """One request's WSGI response as seen from the worker thread."""

    __slots__ = ("status", "headers", "pending", "iterator", "closer", "committed")

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.pending: list[bytes] = []  # chunks collected and not yet sent
        self.iterator = None  # the body iterator while more may come
        self.closer = None
        self.committed = False  # the status line has been handed to the loop

    def start_response(self, status: str, headers, exc_info=None):
        # Until the first batch is handed over, a second call (with exc_info,
        # PEP 3333) replaces the status and headers; after that it re-raises.
        if exc_info is not None and self.committed:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = [
            (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
            for name, value in headers
        ]
        return self.pending.append  # the legacy write() callable

    def fill(self, limit: int) -> bool:
        """Collect chunks until ``limit`` bytes are pending; True when the body is done."""
        size = sum(len(c) for c in self.pending)
        for chunk in self.iterator:
            if chunk:
                self.pending.append(chunk)
                size += len(chunk)
                if size >= limit:
                    return False
        self.close()
        return True

    def take(self) -> bytes:
        out = b"".join(self.pending)
        self.pending.clear()
        return out

    def close(self) -> None:
        self.iterator = None
        closer, self.closer = self.closer, None
        if closer is not None:
            closer()


class OneHopWSGI:
    """An ASGI app serving a WSGI app from a thread pool, one hop per response."""

    def __init__(self, app, *, workers: int = 10, buffer_limit: int = BUFFER_LIMIT):
        self.app = app
        self.buffer_limit = buffer_limit
        self.executor = ThreadPoolExecutor(thread_name_prefix="WSGI", max_workers=workers)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    @staticmethod
    async def _lifespan(receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self, environ) -> tuple[_Exchange, bool]:
        """In the worker thread: run the app and collect the first batch."""
        exchange = _Exchange()
        iterable = self.app(environ, exchange.start_response)
        exchange.iterator = iter(iterable)
        exchange.closer = getattr(iterable, "close", None)
        try:
            done = exchange.fill(self.buffer_limit)
        except BaseException:
            exchange.close()
            raise
        exchange.committed = True
        return exchange, done

    def _more(self, exchange: _Exchange) -> bool:
        """In the worker thread: the next batch of a large body."""
        try:
            return exchange.fill(self.buffer_limit)
        except BaseException:
            exchange.close()
            raise

    async def _http(self, scope, receive, send) -> None:
        loop = asyncio.get_running_loop()
        environ = build_environ(scope, Body(loop, receive))
        # The thread sees this request's context (request id, log fields).
        context = contextvars.copy_context()
        exchange, done = await loop.run_in_executor(
            self.executor, context.run, self._start, environ
        )
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": exchange.status,
                    "headers": exchange.headers,
                }
            )
            while not done:
                await send(
                    {"type": "http.response.body", "body": exchange.take(), "more_body": True}
                )
                done = await loop.run_in_executor(self.executor, context.run, self._more, exchange)
            await send({"type": "http.response.body", "body": exchange.take(), "more_body": False})
        finally:
            if exchange.iterator is not None:  # the client went away mid-stream
                await loop.run_in_executor(self.executor, exchange.close)


def check_layout() -> None:
    """a2wsgi still builds an environ from (scope, body); Connexion still bridges
    its Flask app through ``FlaskASGIApp.asgi_app``."""
    require(
        "wsgi_bridge",
        "a2wsgi",
        list(inspect.signature(build_environ).parameters) == ["scope", "body"],
        "a2wsgi.wsgi.build_environ no longer takes (scope, body)",
    )
    require(
        "wsgi_bridge",
        "a2wsgi",
        list(inspect.signature(Body).parameters)[:2] == ["loop", "receive"],
        "a2wsgi.wsgi.Body no longer takes (loop, receive)",
    )
    require(
        "wsgi_bridge",
        "connexion",
        "self.asgi_app = " in inspect.getsource(FlaskASGIApp.__init__)
        and "self.asgi_app(" in inspect.getsource(FlaskASGIApp.__call__),
        "FlaskASGIApp no longer serves its Flask app through self.asgi_app",
    )


def install(cx_app, **kwargs) -> OneHopWSGI:
    """Put ``OneHopWSGI`` in place of a2wsgi inside a Connexion ``FlaskApp``.

    Connexion keeps its Flask bridge at ``_middleware_app.asgi_app``; if a new
    Connexion release moves it, this fails at start-up instead of silently
    keeping the slower bridge.
    """
    check_layout()
    inner = cx_app._middleware_app
    require(
        "wsgi_bridge",
        "connexion",
        isinstance(inner, FlaskASGIApp),
        "FlaskApp._middleware_app is not a FlaskASGIApp",
    )
    bridge = OneHopWSGI(inner.app.wsgi_app, **kwargs)
    inner.asgi_app = bridge
    return bridge
