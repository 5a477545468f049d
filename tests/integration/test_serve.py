"""`genomeport serve` as an operator runs it: the command itself, no test wiring.

No GENOMEPORT_PUBLIC_URL is set, so the URLs it hands out must name the port
given on the command line; its stderr must be JSON lines, gunicorn's own
included; a SIGTERM or SIGINT sent to the command must leave no gunicorn
process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import REPO, free_port


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def node(tmp_path, seed_dir):
    """``genomeport serve --port P`` over a public dataset; yields (process, port, stderr)."""
    from server.db import Database
    from server.registry import add_dataset, add_files

    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    env.update(
        GENOMEPORT_VAR_DIR=str(var),
        GENOMEPORT_SIGNING_KEY="serve-test-key",
        GENOMEPORT_LOG_FORMAT="json",
        GENOMEPORT_WORKERS="2",
    )
    var.mkdir()
    db = Database(f"sqlite:///{var / 'genomeport.db'}")
    db.upgrade()
    add_dataset(db, "demo", access="public")
    add_files(db, [seed_dir / "DK0001.bam"], "demo", progress=False)
    db.dispose()
    port = free_port()
    err = tmp_path / "stderr"
    with open(tmp_path / "stdout", "wb") as out, open(err, "wb") as errfh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=errfh,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, err.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield proc, port, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_and_check_nothing_is_left(proc, sig) -> None:
    workers = children(proc.pid)
    assert len(workers) == 2, workers  # the master's workers, which must go with it
    proc.send_signal(sig)  # the command's own process, not its group
    assert proc.wait(timeout=40) == 0
    deadline = time.monotonic() + 5
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if alive(w)], "a gunicorn worker outlived genomeport serve"
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing at all is left in its process group


def test_serve_hands_out_its_own_port_logs_json_and_stops_on_sigterm(node):
    proc, port, err = node
    base = f"http://127.0.0.1:{port}"
    ticket = httpx.get(f"{base}/reads/DK0001", timeout=30).json()["htsget"]
    urls = [u["url"] for u in ticket["urls"] if not u["url"].startswith("data:")]
    assert urls
    for url in urls:
        assert urlsplit(url).port == port, url
    assert httpx.get(urls[0], timeout=30, headers=ticket["urls"][1].get("headers")).is_success
    info = httpx.get(f"{base}/service-info", timeout=10).json()
    assert urlsplit(info["documentationUrl"]).port == port
    assert httpx.get(info["documentationUrl"], timeout=10).status_code == 200
    page = httpx.get(base, headers={"Accept": "text/html"}, timeout=10)
    assert page.headers["content-type"].startswith("text/html") and "demo" in page.text
    assert httpx.get(base, timeout=10).json()["datasets"][0]["files"] == 1

    stop_and_check_nothing_is_left(proc, signal.SIGTERM)
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    loggers = {r["logger"] for r in records}
    assert {"gunicorn.error", "uvicorn.error", "genomeport.access"} <= loggers, loggers
    messages = [r["message"] for r in records if r["logger"] == "gunicorn.error"]
    assert any(m.startswith("Booting worker") for m in messages)
    assert any(m.startswith("Shutting down") for m in messages)


def test_ctrl_c_stops_every_worker(node):
    proc, _port, _err = node
    stop_and_check_nothing_is_left(proc, signal.SIGINT)
