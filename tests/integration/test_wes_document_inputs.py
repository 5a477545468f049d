"""Attacks through the workflow document itself, against a real node (gunicorn,
2 workers) and a real ``genomeport worker``: a caller with a valid token and
no grant at all tries to make a run read the node's secrets through CWL
defaults, secondaryFiles, $import/$include and run: references, or to make the
node fetch a private address through a redirecting allow-listed URL. Each is
refused at submit (400 naming the location), no run is recorded, no run
directory is left, and the worker runs nothing. The same node still runs a
remote workflow graph (fetched, packed, run from the local copy) and an
attached one.

(The same documents succeed once the checks are switched off: see
tests/unit/wes/test_graph.py and tests/api/test_wes.py::TestDocumentInputs.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, start_server, stop_server
from tests.integration.test_wes_workflows import start_worker, stop, wait_done
from tests.support.cwl import STEP_OUT, import_tool, one_step
from tests.support.wes import run_form
from tests.unit.wes.conftest import CAT as TOOL
from tests.unit.wes.httpfixture import Site

BASE = "/ga4gh/wes/v1"
SEED = REPO / "seed_data"
pytestmark = pytest.mark.slow


def default_tool(location: str, extra: str = "") -> str:
    return TOOL.replace(
        "  f: {type: File, inputBinding: {position: 1}}\n",
        "  f:\n    type: File\n    inputBinding: {position: 1}\n"
        f"    default:\n      class: File\n      location: {location}\n{extra}",
    )


def include_tool(path: Path) -> str:
    return f"""\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [cat, stolen]
requirements:
  InitialWorkDirRequirement:
    listing:
      - entryname: stolen
        entry:
          $include: {path}
inputs: []
outputs:
  out: stdout
"""


def run_ref(path: Path | str) -> str:
    return one_step(path, outputs=STEP_OUT)


@pytest.fixture
def sites():
    public, internal = Site("127.0.0.1"), Site("127.0.0.2")
    yield public, internal
    public.close()
    internal.close()


@pytest.fixture
def settings(settings, kit):
    return kit.trusting(settings).with_overrides(
        wes_input_roots=(str(SEED),),
        wes_url_allowlist=("wf.test", "internal.test"),
        wes_poll_ms=100,
    )


@pytest.fixture
def node(settings, db, sites):
    env = {
        "PYTHONPATH": str(REPO / "tests" / "integration" / "wes_test_hosts"),
        "WES_TEST_HOSTS": "wf.test=127.0.0.1,internal.test=127.0.0.2,other.test=127.0.0.1",
        "WES_TEST_PUBLIC": "127.0.0.1",
    }
    server = start_server(settings, env_extra=env)
    worker = start_worker(settings, server.url)
    try:
        yield server
    finally:
        stop(worker)
        stop_server(server)


def node_key(settings) -> Path:
    """``<var_dir>/signing.key`` as a node that generated its key has it."""
    key = Path(settings.var_dir).resolve() / "signing.key"
    if not key.exists():
        key.write_text(os.urandom(32).hex())
    return key


def test_document_attacks_are_refused_and_nothing_runs(settings, kit, node, sites, tmp_path):
    public, internal = sites
    key = node_key(settings)
    workroot = settings.effective_wes_work_dir
    planted = workroot / "someone-elses-run" / "inputs" / "tool.cwl"  # another run's file
    planted.parent.mkdir(parents=True)
    planted.write_text(TOOL)
    types = Path(settings.var_dir).resolve() / "types.yml"
    types.write_text("- {name: T, type: record, fields: [{name: a, type: string}]}\n")
    internal.serve("/secret.cwl", TOOL)
    public.redirect("/to-internal.cwl", internal.url("internal.test", "/secret.cwl"))
    public.redirect("/to-other.cwl", public.url("other.test", "/x.cwl"))

    attacks = {
        "default signing.key": (default_tool(str(key)), str(key)),
        "default /etc/passwd": (default_tool("file:///etc/passwd"), "/etc/passwd"),
        "default via ..": (default_tool("../../../signing.key"), "signing.key"),
        "secondaryFiles": (
            default_tool(
                "in.txt", f"      secondaryFiles:\n        - {{class: File, location: {key}}}\n"
            ),
            str(key),
        ),
        "$include": (include_tool(key), str(key)),
        "$import": (import_tool(types), str(types)),
        "run: server path": (run_ref(planted), str(planted)),
        "run: other host": (run_ref("http://other.test/tool.cwl"), "other.test"),
    }
    alice = {"Authorization": f"Bearer {kit.passport('alice')}"}  # valid token, no grants
    with httpx.Client(base_url=node.url, timeout=60, headers=alice) as client:

        def submit(**fields):
            files = list(fields.pop("files", []))
            data = run_form(**fields)
            return client.post(
                f"{BASE}/runs", files=files + [(k, (None, v)) for k, v in data.items()]
            )

        for name, (text, named) in attacks.items():
            resp = submit(
                workflow_url="wf.cwl",
                files=[
                    ("workflow_attachment", ("wf.cwl", text.encode())),
                    ("workflow_attachment", ("in.txt", b"hello\n")),
                ],
            )
            assert resp.status_code == 400, (name, resp.text)
            msg = resp.json()["msg"]
            assert named in msg, (name, msg)
            assert "wf.cwl" in msg or "workflow document" in msg, (name, msg)

        for url, named in (
            (public.url("wf.test", "/to-internal.cwl"), "internal.test"),
            (public.url("wf.test", "/to-other.cwl"), "other.test"),
        ):
            resp = submit(workflow_url=url)
            assert resp.status_code == 400, resp.text
            assert named in resp.json()["msg"] and "redirect" in resp.json()["msg"]
        assert internal.hits == []  # the private address was never contacted
        assert sorted(public.hits) == ["/to-internal.cwl", "/to-other.cwl"]

        assert client.get(f"{BASE}/runs", headers=alice).json()["runs"] == []
        assert sorted(os.listdir(workroot)) == ["someone-elses-run"]
        secret = key.read_bytes()
        log = (Path(settings.var_dir) / "worker.log").read_bytes()
        assert secret not in log

        # the same node runs a legitimate remote graph from its local, packed copy
        public.serve("/wf/main.cwl", run_ref("tools/tool.cwl"))
        public.serve("/wf/tools/tool.cwl", TOOL)
        public.serve("/data/in.txt", "fetched input\n")
        resp = submit(
            workflow_url=public.url("wf.test", "/wf/main.cwl"),
            workflow_params=json.dumps(
                {"f": {"class": "File", "location": public.url("wf.test", "/data/in.txt")}}
            ),
        )
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["run_id"]
        hits_at_submit = list(public.hits)
        done = wait_done(client, run_id)
        assert done["state"] == "COMPLETE", done["run_log"]
        assert public.hits == hits_at_submit  # nothing fetched at run time
        out = client.get(done["outputs"]["out"]["location"])
        assert out.status_code == 200 and out.text == "fetched input\n"
        workdir = workroot / run_id
        assert done["run_log"]["cmd"][-2].endswith("workflow/packed.cwl#main")
        assert json.loads((workdir / "readable.json").read_text()) == []


def test_attached_workflow_with_allowed_defaults_completes(settings, kit, node):
    alice = {"Authorization": f"Bearer {kit.passport('alice')}"}
    with httpx.Client(base_url=node.url, timeout=60, headers=alice) as client:
        resp = client.post(
            f"{BASE}/runs",
            data=run_form("wf.cwl"),
            files=[
                ("workflow_attachment", ("wf.cwl", default_tool("data/in.txt").encode())),
                ("workflow_attachment", ("data/in.txt", b"attached default\n")),
            ],
        )
        assert resp.status_code == 200, resp.text
        done = wait_done(client, resp.json()["run_id"])
        assert done["state"] == "COMPLETE", done["run_log"]
        assert client.get(done["outputs"]["out"]["location"]).text == "attached default\n"
