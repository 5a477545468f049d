"""``genomeport serve``: gunicorn runs inside the command's own process.

The process the operator started is the gunicorn master (arbiter), rather than a
wrapper around a ``gunicorn`` child, so:

- SIGTERM sent to ``genomeport serve`` stops the workers gracefully and SIGINT
  (Ctrl-C) at once; the command exits only after every worker has, and a worker
  whose master is gone exits by itself, so no gunicorn process outlives it;
- the workers build the app from the very ``Settings`` the command resolved
  (``--host``/``--port`` included, so the public URL derived from them is the
  same in every worker), not from a second reading of the environment;
- gunicorn's own lines ("Booting worker", errors) go through the node's
  formatter: JSON lines with ``GENOMEPORT_LOG_FORMAT=json``, like the app's.
"""

from __future__ import annotations

import logging

from gunicorn.app.base import BaseApplication

from server.settings import Settings

WORKER_CLASS = "server.web.worker.Worker"  # uvicorn, asyncio loop, zero-copy sends


def log_config(level: str, fmt: str) -> dict:
    """gunicorn's ``logconfig_dict``: every logger, gunicorn's included, writes
    one formatter's lines to stderr."""
    formatter = (
        {"()": "server.logging.JsonFormatter"}
        if fmt == "json"
        else {
            "()": "server.logging.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    )
    handler = {"class": "logging.StreamHandler", "formatter": "node", "stream": "ext://sys.stderr"}
    # uvicorn's loggers take gunicorn.error's handlers and do not propagate
    own = {"level": level.upper(), "handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"node": formatter},
        "handlers": {"stderr": handler},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {"gunicorn.error": own, "gunicorn.access": {**own, "level": "INFO"}},
    }


class NodeServer(BaseApplication):
    """gunicorn with uvicorn workers serving ``settings`` on ``host:port``."""

    def __init__(self, settings: Settings, *, workers: int | None = None):
        self.settings = settings
        self.options = {
            "bind": f"{settings.host}:{settings.port}",
            "workers": workers or settings.workers,
            "worker_class": WORKER_CLASS,
            "graceful_timeout": 20,
            "timeout": 120,
            "loglevel": settings.log_level.lower(),
            "logconfig_dict": log_config(settings.log_level, settings.log_format),
            "proc_name": f"genomeport {settings.host}:{settings.port}",
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn >= 24's control socket sits in $HOME, shared by every node there
            self.cfg.set("control_socket_disable", True)

    def load(self):
        """Build the app in each worker, after the fork."""
        from server.logging import configure
        from server.web.app import create_app

        configure(self.settings.log_level, self.settings.log_format)
        logging.captureWarnings(True)  # a library's warning is a log line too
        return create_app(self.settings, migrate=False)


def run(settings: Settings, *, workers: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT; exits once every worker has stopped."""
    logging.captureWarnings(True)
    NodeServer(settings, workers=workers).run()
