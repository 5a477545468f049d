"""Toil on a real single-node Slurm cluster (Debian slurm-wlm, started by
scripts/start-slurm.sh), driven through the node's WES API and a real worker."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from server.wes import store
from tests.conftest import REPO
from tests.integration.test_wes_workflows import BASE, start_worker, stop, wait_done
from tests.support.wes import attachments, run_form
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
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{script} failed: {done.stderr[-2000:]}"
    toil = REPO / "var" / "venvs" / "toil" / "bin" / "toil-cwl-runner"
    if not toil.exists():
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "client-venvs.sh"), "toil"],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def db_url(tmp_path):  # the cluster path is database-agnostic; SQLite keeps this fast
    return f"sqlite:///{tmp_path / 'genomeport.db'}"


@pytest.fixture
def settings(settings):
    # Slurm jobs run as the sandbox user (genomeport-run) on the compute node, which must
    # reach the run directories: a shared work directory it may search (0711), unlike
    # pytest's private tmp (0700)
    work = Path(tempfile.mkdtemp(prefix="genomeport-slurm-", dir="/tmp"))
    work.chmod(0o711)
    yield settings.with_overrides(wes_poll_ms=100, wes_work_dir=str(work))
    shutil.rmtree(work, ignore_errors=True)


def tagged_jobs(run_id: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.endswith(f"genomeport-wes-{run_id}")]


def submit(client, text, params, name="wf.cwl"):
    resp = client.post(
        f"{BASE}/runs",
        data=run_form(
            name,
            params,
            workflow_engine="toil",
            workflow_engine_parameters=json.dumps({"batchSystem": "slurm", "maxCores": 2}),
        ),
        files=attachments((name, text)),
    )
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


PROBE_WF = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [bash, -c]
arguments:
  - |
    echo -n "uid "; id -u
    cat "$0" 2>&1 | head -c 200
    if timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' 2>/dev/null
    then echo CONNECTED
    else echo REFUSED
    fi
inputs:
  secret: {type: string, inputBinding: {position: 1}}
outputs:
  out: stdout
stdout: probe.txt
"""


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
def test_slurm_jobs_run_in_the_sandbox(slurm, settings, db, sandbox):
    """A tool on a compute node runs as genomeport-run, without network and
    without the node's var/; with the sandbox off it is root with both."""
    import pwd

    from server.auth.urls import signing_key
    from tests.conftest import start_server, stop_server

    settings = settings.with_overrides(signing_key="", wes_sandbox=sandbox)
    key = signing_key(settings).decode()
    secret_path = str(Path(settings.var_dir).resolve() / "signing.key")
    server = start_server(settings)
    worker = start_worker(settings, server.url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            run_id = submit(client, PROBE_WF, {"secret": secret_path}, name="probe.cwl")
            log = wait_done(client, run_id, timeout=240)
            assert log["state"] == "COMPLETE", log["run_log"]["system_logs"]
            seen = client.get(log["outputs"]["out"]["location"]).text
            assert store.get_run(db, run_id).cluster_job_ids, "the tool did not run on Slurm"
    finally:
        stop(worker)
        stop_server(server)
    if sandbox == "bwrap":
        assert f"uid {pwd.getpwnam('genomeport-run').pw_uid}" in seen
        assert key not in seen and "REFUSED" in seen, seen
    else:
        assert "uid 0" in seen and key in seen and "CONNECTED" in seen, seen


LEADER_PROBE = """\
import socket, subprocess, sys
for name, port in (("database", 5432), ("node", int(sys.argv[1]))):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        print(name, "CONNECTED")
    except OSError as exc:
        print(name, "REFUSED", exc)
done = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
print("squeue", "OK" if done.returncode == 0 else "FAILED " + done.stderr.strip())
caps = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("CapEff")]
print("capabilities", caps[0])
"""


@pytest.mark.parametrize("relay", [True, False])
def test_the_toil_leader_reaches_slurmctld_and_nothing_else(slurm, settings, relay):
    """The leader's sandbox (cluster_client) has its own network namespace: the
    database (127.0.0.1:5432) and a port of the node are unreachable, slurmctld
    (squeue, through the relay) is reachable. Sharing the host network (the
    former behaviour, ``cluster_relay=False``) reaches all three."""
    import socket
    import sys
    import threading

    from server.wes import sandbox

    node = socket.socket()
    node.bind(("127.0.0.1", 0))
    node.listen(8)

    def accept():
        while True:
            try:
                node.accept()[0].close()
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    workdir = Path(settings.effective_wes_work_dir) / f"leader-{relay}"
    (workdir / "tmp").mkdir(parents=True)
    launch = sandbox.wrap(
        settings,
        workdir=workdir,
        env={"PATH": "/usr/bin:/bin"},
        command=[sys.executable, "-c", LEADER_PROBE, str(node.getsockname()[1])],
        cluster_client=True,
        cluster_relay=relay,
    )
    assert launch.network is not relay and (launch.relay is not None) is relay
    proxy = launch.start_relay()
    try:
        done = subprocess.run(
            launch.argv, env=launch.env, cwd=workdir, capture_output=True, text=True, timeout=120
        )
    finally:
        if proxy is not None:
            proxy.close()
        node.close()
    seen = done.stdout + done.stderr
    assert done.returncode == 0, seen
    assert "squeue OK" in seen and "capabilities 0000000000000000" in seen, seen
    if relay:
        assert "database REFUSED" in seen and "node REFUSED" in seen, seen
    else:
        assert "database CONNECTED" in seen and "node CONNECTED" in seen, seen
