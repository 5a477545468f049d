"""Real WES clients against a real node (gunicorn) and a real worker:
``wes-client`` (PyPI wes-service) and ``toil-wes-cwl-runner`` (Toil), each from
its own virtualenv (scripts/client-venvs.sh) because their pins clash with ours.
Both speak to a development node (no issuer configured): neither client can
send a bearer token on submission."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.integration.test_wes_workflows import start_worker, stop, wait_done

pytestmark = pytest.mark.slow
VENVS = REPO / "var" / "venvs"

WC_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [wc, -l]
stdin: $(inputs.f.path)
inputs: {f: File}
outputs: {out: stdout}
stdout: count.txt
"""

COUNT_WF = """\
cwlVersion: v1.2
class: Workflow
inputs:
  infile: File
outputs:
  count:
    type: File
    outputSource: count/out
steps:
  upper:
    run:
      class: CommandLineTool
      baseCommand: [tr, a-z, A-Z]
      stdin: $(inputs.f.path)
      inputs: {f: File}
      outputs: {out: stdout}
      stdout: upper.txt
    in: {f: infile}
    out: [out]
  count:
    run: tools/wc.cwl
    in: {f: upper/out}
    out: [out]
"""


def venv_bin(name: str, tool: str) -> Path:
    path = VENVS / name / "bin" / tool
    if not path.exists():
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "client-venvs.sh"), name],
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return path


@pytest.fixture
def db_url(tmp_path):  # the clients' path is database-agnostic; SQLite keeps this fast
    return f"sqlite:///{tmp_path / 'genomeport.db'}"


@pytest.fixture
def settings(settings):
    return settings.with_overrides(auth_issuers=(), wes_poll_ms=100)


@pytest.fixture
def node(settings, db, live_server):
    worker = start_worker(settings, live_server.url)
    try:
        yield live_server.url
    finally:
        stop(worker)


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    (root / "tools").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "wf.cwl").write_text(COUNT_WF)
    (root / "tools" / "wc.cwl").write_text(WC_TOOL)
    (root / "data" / "in.txt").write_text("one\ntwo\nthree\n")
    (root / "job.json").write_text(json.dumps({"infile": {"class": "File", "path": "data/in.txt"}}))
    return root


def test_wes_client_lists_submits_with_attachments_polls_and_fetches_logs(node, project):
    client = str(venv_bin("wes-service", "wes-client"))
    host = node.removeprefix("http://")
    common = [client, f"--host={host}", "--proto=http"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WES_API")}

    info = subprocess.run([*common, "--info"], capture_output=True, text=True, env=env, timeout=60)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["type"]["artifact"] == "wes"

    sub = subprocess.run(
        [*common, "--no-wait", "--attachments=tools/wc.cwl,data/in.txt", "wf.cwl", "job.json"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=60,
    )
    assert sub.returncode == 0, sub.stderr
    run_id = sub.stdout.strip().splitlines()[-1]

    with httpx.Client(base_url=node, timeout=30) as http:
        log = wait_done(http, run_id)
    assert log["state"] == "COMPLETE", log["run_log"]["system_logs"]

    listed = subprocess.run(
        [*common, "--list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert run_id in [r["run_id"] for r in json.loads(listed.stdout)["runs"]]

    got = subprocess.run(
        [*common, f"--get={run_id}"], capture_output=True, text=True, env=env, timeout=60
    )
    body = json.loads(got.stdout)
    assert body["state"] == "COMPLETE"
    assert httpx.get(body["outputs"]["count"]["location"]).text.split()[0] == "3"
    assert [t["name"] for t in body["task_logs"]] == ["upper", "count"]

    logs = subprocess.run(
        [*common, f"--log={run_id}"], capture_output=True, text=True, env=env, timeout=60
    )
    assert logs.returncode == 0 and "[job count]" in logs.stdout


def test_toil_wes_cwl_runner_runs_a_workflow_to_completion(node, project, tmp_path):
    runner = venv_bin("toil", "toil-wes-cwl-runner")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOIL_")}
    env["PATH"] = f"{runner.parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        [
            str(runner),
            f"--wes_endpoint={node}",
            "--outdir=" + str(tmp_path / "out"),
            "--quiet",
            "wf.cwl",
            "job.json",
        ],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = json.loads(done.stdout)
    assert outputs["count"]["basename"] == "count.txt"
    assert httpx.get(outputs["count"]["location"]).text.split()[0] == "3"
