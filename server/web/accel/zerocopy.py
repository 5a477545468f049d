"""uvicorn's HTTP/1.1 protocol with the ASGI ``http.response.zerocopysend`` extension.

Serving a large file through ``http.response.body`` messages copies every
byte from the page cache into a Python bytes object and again into the
socket. With this extension the application hands over an open file, an
offset and a count, and the kernel moves the bytes (``os.sendfile`` through
``loop.sendfile``): the data plane then runs near the raw read rate.

The extension is advertised in ``scope["extensions"]`` only when the running
event loop implements ``loop.sendfile`` natively for sockets (the asyncio
selector loop does; uvloop does not), and only for responses with a
Content-Length. Applications must keep a plain streaming path for servers
that do not advertise it (``server.web.dataplane`` does).

This relies on uvicorn's httptools protocol building one
``RequestResponseCycle`` per request in ``on_headers_complete`` (whose class
is swapped for ``ZeroCopyCycle`` before the ASGI task first runs), on that
cycle's bookkeeping attributes, and on asyncio's ``_sendfile_native``
(``check_layout``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import is_ssl

from server.web.accel import require

logger = logging.getLogger(__name__)

EXTENSION = "http.response.zerocopysend"

# what ZeroCopyCycle reads and writes of uvicorn's cycle
CYCLE_ATTRIBUTES = (
    "scope",
    "transport",
    "flow",
    "disconnected",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
)


def check_layout() -> None:
    """uvicorn's cycle still has the attributes ``ZeroCopyCycle`` uses, the protocol
    still makes it in ``on_headers_complete``, and asyncio still sends files natively."""
    assigned = set(re.findall(r"self\.(\w+)\s*[:=]", inspect.getsource(RequestResponseCycle)))
    missing = [name for name in CYCLE_ATTRIBUTES if name not in assigned]
    require(
        "zerocopy",
        "uvicorn",
        not missing,
        f"httptools_impl.RequestResponseCycle no longer sets {', '.join(missing)}",
    )
    require(
        "zerocopy",
        "uvicorn",
        "self.cycle = RequestResponseCycle(" in inspect.getsource(HttpToolsProtocol),
        "HttpToolsProtocol no longer builds its RequestResponseCycle as self.cycle",
    )
    require(
        "zerocopy",
        "uvicorn",
        "on_headers_complete" in vars(HttpToolsProtocol),
        "HttpToolsProtocol has no on_headers_complete",
    )


def loop_supports_sendfile(loop: asyncio.AbstractEventLoop) -> bool:
    """True when ``loop.sendfile`` can use ``os.sendfile`` on a TCP transport."""
    return isinstance(loop, asyncio.BaseEventLoop) and hasattr(loop, "_sendfile_native")


class ZeroCopyCycle(RequestResponseCycle):
    """A request/response cycle that also accepts ``http.response.zerocopysend``."""

    async def send(self, message) -> None:
        if message["type"] != EXTENSION:
            await super().send(message)
            return
        if not self.response_started or self.response_complete:
            raise RuntimeError(f"unexpected ASGI message {EXTENSION!r} outside a response body")
        if self.chunked_encoding:
            raise RuntimeError(f"{EXTENSION} needs a response with a Content-Length")
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if not self.disconnected and self.scope["method"] != "HEAD":
            await self._sendfile(message)
        # uvicorn's own bookkeeping ends the response (length check, keep-alive).
        await super().send(
            {
                "type": "http.response.body",
                "body": b"",
                "more_body": message.get("more_body", False),
            }
        )

    async def _sendfile(self, message) -> None:
        file = message["file"]
        offset = message.get("offset")
        count = message.get("count")
        if offset is None:
            offset = file.tell()
        if count is None:
            count = os.fstat(file.fileno()).st_size - offset
        if count > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if count <= 0:
            return
        loop = asyncio.get_running_loop()
        try:
            sent = await loop.sendfile(self.transport, file, offset, count)
        except (ConnectionError, OSError) as exc:
            if self.transport.is_closing() or isinstance(exc, ConnectionError):
                # The client went away: like uvicorn's own send, drop the rest quietly.
                self.disconnected = True
                return
            raise
        self.expected_content_length -= sent
        if sent < count:
            raise RuntimeError("file shorter than the count given to zerocopysend")


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose requests may answer with ``http.response.zerocopysend``."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Over TLS the kernel cannot encrypt: asyncio would copy anyway.
        self._zerocopy = loop_supports_sendfile(self.loop) and not is_ssl(transport)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # uvicorn builds a plain cycle; give it the extension's send. The ASGI
        # task has been created but not run yet, so it looks up ``send`` on the
        # new class and sees the extension in its scope. Offered only when that
        # worked: a changed uvicorn falls back to plain streaming, never breaks.
        cycle = self.cycle
        if not self._zerocopy or cycle is None or cycle.scope is not self.scope:
            return
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = ZeroCopyCycle
        if isinstance(cycle, ZeroCopyCycle):
            self.scope.setdefault("extensions", {})[EXTENSION] = {}
