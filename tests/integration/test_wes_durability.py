"""Durable runs on a real deployment: gunicorn with two API workers, real
`genomeport worker` processes, a worker killed mid-run, an API restart, a
cancel that must leave no process behind, and concurrent submissions."""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from server.wes import store
from tests.conftest import start_server, stop_server
from tests.integration.test_wes_workflows import BASE, start_worker, stop, wait_done
from tests.support.wes import attachments, run_form
from tests.unit.wes.conftest import SLEEP, TWO_STEP
from tests.unit.wes.test_worker import group_alive

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(settings):
    return settings.with_overrides(wes_poll_ms=100, wes_heartbeat_timeout=10, wes_worker_slots=4)


def submit(
    client: httpx.Client, text: str, params: dict | None = None, name: str = "wf.cwl"
) -> str:
    resp = client.post(
        f"{BASE}/runs",
        data=run_form(name, params),
        files=attachments((name, text)),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["run_id"]


def wait_state(client: httpx.Client, run_id: str, wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"{BASE}/runs/{run_id}/status").json()["state"] == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {wanted}")


def start_sleeper(client: httpx.Client, db) -> tuple[str, int]:
    """Submit the sleeping tool; once its task runs, its run id and process group."""
    run_id = submit(client, SLEEP, name="sleep.cwl")
    wait_state(client, run_id, "RUNNING")
    deadline = time.monotonic() + 30
    while not store.get_tasks(db, store.get_run(db, run_id).pk):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return run_id, store.get_run(db, run_id).pgid


def no_sleepers() -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", "sleep 30[01]"], capture_output=True).stdout == b"":
            return True
        time.sleep(0.1)
    return False


def test_killed_worker_and_api_restart_are_reconciled(settings, db):
    server = start_server(settings, workers=2)
    worker = start_worker(settings, server.url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            run_id, pgid = start_sleeper(client, db)
            worker.send_signal(signal.SIGKILL)  # the worker dies mid-run
            worker.wait(10)
            # the sandbox (bwrap --die-with-parent) ends the engine's whole tree with its worker
            assert not group_alive(pgid) and no_sleepers()
        stop_server(server)  # ... and the API restarts
        server = start_server(settings, workers=2)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            log = client.get(f"{BASE}/runs/{run_id}").json()
            assert log["state"] == "SYSTEM_ERROR" and log["run_log"]["end_time"]
            assert any("vanished" in line for line in log["run_log"]["system_logs"])
            assert not group_alive(pgid) and no_sleepers()
            # a new worker picks up new work; the closed run stays closed
            worker = start_worker(settings, server.url)
            ok = submit(client, TWO_STEP, {"msg": "hello"})
            assert wait_done(client, ok)["state"] == "COMPLETE"
            assert client.get(f"{BASE}/runs/{run_id}/status").json()["state"] == "SYSTEM_ERROR"
    finally:
        stop(worker)
        stop_server(server)


def test_cancel_of_long_run_leaves_no_process_and_concurrent_runs_all_complete(settings, db):
    server = start_server(settings, workers=2)
    workers = [start_worker(settings, server.url) for _ in range(2)]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            long_run, pgid = start_sleeper(client, db)
            assert client.post(f"{BASE}/runs/{long_run}/cancel").status_code == 200
            assert client.get(f"{BASE}/runs/{long_run}/status").json()["state"] in (
                "CANCELING",
                "CANCELED",
            )
            log = wait_done(client, long_run, timeout=30)
            assert log["state"] == "CANCELED" and log["run_log"]["end_time"]
            assert not group_alive(pgid) and no_sleepers()

            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(lambda i: submit(client, TWO_STEP, {"msg": f"m{i}"}), range(8)))
            assert len(set(ids)) == 8
            states = [wait_done(client, rid, timeout=240)["state"] for rid in ids]
            assert states == ["COMPLETE"] * 8
            runs = {r.id: r for r in (store.get_run(db, rid) for rid in ids)}
            assert len({r.worker_id for r in runs.values()}) == 2  # both workers took work
    finally:
        for w in workers:
            stop(w)
        stop_server(server)
