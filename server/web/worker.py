"""The gunicorn worker class ``genomeport serve`` runs (and so the container).

A uvicorn worker on the asyncio event loop. With the ``zerocopy``
acceleration (``GENOMEPORT_ACCEL``, on by default) its HTTP/1.1 protocol is
``server.web.accel.zerocopy.ZeroCopyHttpToolsProtocol``, so the data plane
can hand files to the kernel (``http.response.zerocopysend``); without it,
uvicorn's own httptools protocol. uvloop is not used: it has no
``loop.sendfile``, and on the ticket path the loop is a small share of the
time (the handlers run in a thread pool).
"""

from __future__ import annotations

from uvicorn_worker import UvicornWorker

from server.settings import Settings
from server.web import accel


def config_kwargs(settings: Settings) -> dict:
    """uvicorn's loop and HTTP protocol for ``settings``."""
    if "zerocopy" not in accel.enabled(settings):
        return {"loop": "asyncio", "http": "httptools"}
    from server.web.accel.zerocopy import ZeroCopyHttpToolsProtocol, check_layout

    check_layout()
    return {"loop": "asyncio", "http": ZeroCopyHttpToolsProtocol}


class Worker(UvicornWorker):
    """``uvicorn_worker.UvicornWorker`` with the node's loop and HTTP protocol."""

    CONFIG_KWARGS = {"loop": "asyncio", "http": "httptools"}

    def __init__(self, *args, **kwargs):
        # read by UvicornWorker.__init__ when it builds uvicorn's Config
        self.CONFIG_KWARGS = config_kwargs(Settings.from_env())
        super().__init__(*args, **kwargs)
