"""The gunicorn worker class ``genomeport serve`` runs (and so the container).

A uvicorn worker on the asyncio event loop with ``ZeroCopyHttpToolsProtocol``,
so the data plane can hand files to the kernel (``http.response.zerocopysend``).
uvloop is not used: it has no ``loop.sendfile``, and on the ticket path the
loop is a small share of the time (the handlers run in a thread pool).
"""

from __future__ import annotations

from uvicorn_worker import UvicornWorker

from server.zerocopy import ZeroCopyHttpToolsProtocol


class Worker(UvicornWorker):
    """``uvicorn_worker.UvicornWorker`` with the zero-copy HTTP/1.1 protocol."""

    CONFIG_KWARGS = {"loop": "asyncio", "http": ZeroCopyHttpToolsProtocol}
