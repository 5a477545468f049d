"""The shipped workflows through a real node (gunicorn) and a real worker process;
their outputs must equal samtools/bcftools run directly on the same data."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, settings_env
from tests.support.processes import clean_env, spawn

SEED = REPO / "seed_data"
BASE = "/ga4gh/wes/v1"
pytestmark = pytest.mark.slow


@pytest.fixture
def settings(settings):
    return settings.with_overrides(
        wes_input_roots=(str(SEED),),
        wes_node_callers=("anonymous",),
        wes_poll_ms=100,
        wes_worker_slots=3,
    )


def start_worker(settings, url: str) -> subprocess.Popen:
    env = clean_env()
    env.update(settings_env(settings.with_overrides(public_url=url)))
    log = Path(settings.var_dir) / "worker.log"
    return spawn(
        [sys.executable, "-m", "server.cli", "worker"], log, env=env, cwd=REPO, append=True
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_done(client: httpx.Client, run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"{BASE}/runs/{run_id}/status").json()["state"]
        if state in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"):
            return client.get(f"{BASE}/runs/{run_id}").json()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {state}")


def sh(*cmd: str) -> bytes:
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def test_shipped_workflows_complete_with_correct_outputs(settings, db, live_server):
    from server import registry

    registry.add_dataset(db, "demo", access="public", name="demo", assembly="GPDEMO1")
    worker = start_worker(settings, live_server.url)
    try:
        with httpx.Client(base_url=live_server.url, timeout=30) as client:

            def run(url, params):
                resp = client.post(
                    f"{BASE}/runs",
                    files={
                        "workflow_type": (None, "CWL"),
                        "workflow_type_version": (None, "v1.2"),
                        "workflow_url": (None, url),
                        "workflow_params": (None, json.dumps(params)),
                    },
                )
                assert resp.status_code == 200, resp.text
                return resp.json()["run_id"]

            bam = {"class": "File", "path": str(SEED / "DK0001.bam")}
            qc = run("alignment-qc", {"alignments": bam})
            vc = run(
                "workflows/variant-calling/variant-calling.cwl",
                {
                    "reference": {"class": "File", "path": str(SEED / "reference.fa")},
                    "alignments": bam,
                    "region": "chr1:1-20000",
                },
            )
            bl = run(
                "beacon-load-vcf",
                {"vcf": {"class": "File", "path": str(SEED / "cohort.vcf.gz")}, "dataset": "demo"},
            )
            logs = {
                name: wait_done(client, rid) for name, rid in (("qc", qc), ("vc", vc), ("bl", bl))
            }
            for name, log in logs.items():
                assert log["state"] == "COMPLETE", (name, log["run_log"]["system_logs"])

            def fetch(output) -> bytes:
                resp = client.get(output["location"])
                assert resp.status_code == 200
                return resp.content

            qc_out = logs["qc"]["outputs"]
            assert fetch(qc_out["flagstat_report"]) == sh(
                "samtools", "flagstat", str(SEED / "DK0001.bam")
            )
            sn = lambda text: [ln for ln in text.splitlines() if ln.startswith(b"SN")]  # noqa: E731
            assert sn(fetch(qc_out["stats_report"])) == sn(
                sh("samtools", "stats", str(SEED / "DK0001.bam"))
            )
            assert sorted(t["name"] for t in logs["qc"]["task_logs"]) == ["flagstat", "stats"]

            # every output file is also a DRS object of this node, with matching checksums
            import hashlib

            for output in qc_out.values():
                drs_id = output["drs_uri"].rsplit("/", 1)[-1]
                assert output["drs_uri"] == f"drs://127.0.0.1/{drs_id}"
                obj = client.get(f"/ga4gh/drs/v1/objects/{drs_id}")
                assert obj.status_code == 200, obj.text
                sums = {c["type"]: c["checksum"] for c in obj.json()["checksums"]}
                assert sums["sha-256"] == hashlib.sha256(fetch(output)).hexdigest()

            direct = subprocess.run(
                f"bcftools mpileup -Ou -a AD,DP -f {SEED / 'reference.fa'} -r chr1:1-20000 "
                f"{SEED / 'DK0001.bam'} | bcftools call -mv -Ov",
                shell=True,
                check=True,
                capture_output=True,
            ).stdout
            body = lambda vcf: [ln for ln in vcf.splitlines() if not ln.startswith(b"#")]  # noqa: E731
            via_wes = gzip.decompress(fetch(logs["vc"]["outputs"]["calls"]))
            assert body(via_wes) == body(direct) and len(body(direct)) > 0

            report = fetch(logs["bl"]["outputs"]["report"]).decode()
            assert "loaded" in report and "variants" in report
            beacon = client.post(
                "/beacon/v2/g_variants",
                json={
                    "meta": {"apiVersion": "2.0"},
                    "query": {
                        "requestParameters": {
                            "assemblyId": "GPDEMO1",
                            "referenceName": "chr1",
                            "start": [0],
                            "end": [50000],
                        },
                        "requestedGranularity": "count",
                    },
                },
            )
            assert beacon.status_code == 200 and beacon.json()["responseSummary"]["exists"] is True
    finally:
        stop(worker)
