"""Toil on a real single-node Slurm cluster (Debian slurm-wlm, started by
scripts/start-slurm.sh), driven through the node's WES API and a real worker."""

from __future__ import annotations

import io
import json
import subprocess
import time

import httpx
import pytest

from server.wes import store
from tests.conftest import REPO
from tests.integration.test_wes_workflows import BASE, start_worker, stop, wait_done
from tests.unit.wes.conftest import TWO_STEP

pytestmark = pytest.mark.slow

SLEEP_WF = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sleep, "600"]
inputs: []
outputs: []
"""


@pytest.fixture(scope="module")
def slurm():
    for script in ("install-slurm.sh", "start-slurm.sh"):
        done = subprocess.run(["bash", str(REPO / "scripts" / script)], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{script} failed: {done.stderr[-2000:]}"
    toil = REPO / "var" / "venvs" / "toil" / "bin" / "toil-cwl-runner"
    if not toil.exists():
        done = subprocess.run(["bash", str(REPO / "scripts" / "client-venvs.sh"), "toil"],
                              capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def db_url(tmp_path):  # the cluster path is database-agnostic; SQLite keeps this fast
    return f"sqlite:///{tmp_path / 'genomeport.db'}"


@pytest.fixture
def settings(settings):
    return settings.with_overrides(wes_poll_ms=100)


def tagged_jobs(run_id: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.endswith(f"genomeport-wes-{run_id}")]


def submit(client, text, params, name="wf.cwl"):
    resp = client.post(f"{BASE}/runs", data={
        "workflow_type": "CWL", "workflow_type_version": "v1.2", "workflow_url": name,
        "workflow_params": json.dumps(params), "workflow_engine": "toil",
        "workflow_engine_parameters": json.dumps({"batchSystem": "slurm", "maxCores": 2})},
        files=[("workflow_attachment", (name, io.BytesIO(text.encode())))])
    assert resp.status_code == 200, resp.text
    return resp.json()["run_id"]


def test_toil_runs_steps_as_slurm_jobs(slurm, settings, db, live_server):
    worker = start_worker(settings, live_server.url)
    try:
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            run_id = submit(client, TWO_STEP, {"msg": "hello"})
            log = wait_done(client, run_id, timeout=240)
            assert log["state"] == "COMPLETE", log["run_log"]["system_logs"]
            assert log["request"]["workflow_engine"] == "toil"
            out = client.get(log["outputs"]["out"]["location"])
            assert out.status_code == 200 and out.text.split()[0] == "6"
            assert log["task_logs"] and all(t["exit_code"] == 0 for t in log["task_logs"])
            assert store.get_run(db, run_id).cluster_job_ids, "no Slurm job was seen for the run"
    finally:
        stop(worker)


def test_cancel_scancels_the_cluster_jobs(slurm, settings, db, live_server):
    worker = start_worker(settings, live_server.url)
    try:
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            run_id = submit(client, SLEEP_WF, {}, name="sleep.cwl")
            deadline = time.monotonic() + 120
            while not tagged_jobs(run_id):
                assert time.monotonic() < deadline, "the run never reached Slurm"
                time.sleep(0.5)
            assert client.post(f"{BASE}/runs/{run_id}/cancel").status_code == 200
            log = wait_done(client, run_id, timeout=60)
            assert log["state"] == "CANCELED"
            deadline = time.monotonic() + 30
            while tagged_jobs(run_id):
                assert time.monotonic() < deadline, "Slurm jobs outlived the canceled run"
                time.sleep(0.5)
            assert subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True).stdout == b""
    finally:
        stop(worker)
