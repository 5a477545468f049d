"""A moto S3 server in its own process, and what a test needs to talk to it.

The integration tests that put files in object storage (the htsget tickets,
the S3 inbox) start the same server with the same credentials: ``server``
runs it for the length of a ``with`` block, ``client`` is a boto3 client for
it, and ``overrides`` are the node settings that point at it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, spawn, stop, wait_ready

CREDENTIALS = {"s3_access_key": "testing", "s3_secret_key": "testing", "s3_region": "us-east-1"}


@contextmanager
def server(log_dir: Path) -> Iterator[str]:
    """Run a moto server on a free port and yield its URL; stop it after."""
    port = free_port()
    log = log_dir / "moto.log"
    proc = spawn(
        [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1"]
        + ["-p", str(port)],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, timeout=30, ready=lambda status: True)
        yield url
    finally:
        stop(proc, timeout=10)


def client(url: str):
    """A boto3 S3 client for the server at ``url``."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=CREDENTIALS["s3_region"],
        aws_access_key_id=CREDENTIALS["s3_access_key"],
        aws_secret_access_key=CREDENTIALS["s3_secret_key"],
    )


def overrides(url: str) -> dict[str, str]:
    """The node settings that make it use the server at ``url``."""
    return {"s3_endpoint_url": url, **CREDENTIALS}
