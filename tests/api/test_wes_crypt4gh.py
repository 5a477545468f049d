"""WES runs on Crypt4GH-archived ``drs://`` inputs: the plaintext exists only in the
run's own directory while the run executes (real worker, real sandbox)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from server.inbox.ingest import Ingest, enqueue_local
from server.registry import add_dataset
from server.wes.worker import Worker
from tests.support import c4gh
from tests.support.wes import run_form

BASE = "/ga4gh/wes/v1"
BAM = "reads/HG00100.chr17slice.bam"
COUNT = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [samtools, view, -c]
inputs:
  bam: {type: File, inputBinding: {position: 1}}
stdout: count.txt
outputs:
  out: {type: stdout}
"""


@pytest.fixture
def settings(settings, kit):
    return kit.trusting(settings).with_overrides(
        wes_poll_ms=50, wes_heartbeat_timeout=5, c4gh_passphrase="wes-passphrase"
    )


def plaintext_files(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            head = path.read_bytes()[:4]
            if head == b"\x1f\x8b\x08\x04" or head == b"CRAM":  # BGZF (BAM/VCF/BCF) or CRAM
                found.append(str(path))
    return found


def test_encrypted_drs_input_is_decrypted_for_the_run_only(
    client, kit, settings, db, testdata, tmp_path
):
    from server.c4gh.keys import key_paths, keygen

    keygen(settings)
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ds:ctl")
    enc = c4gh.encrypt(testdata / BAM, key_paths(settings)[1], tmp_path / "hg.bam.c4gh")
    enqueue_local(settings, db, enc, "ctl", object_id="HG00100", operator="centre")
    assert Ingest(settings, db).work(once=True) == 1

    params = json.dumps({"bam": {"class": "File", "location": "drs://127.0.0.1/HG00100.bam"}})
    files = [("workflow_attachment", ("count.cwl", io.BytesIO(COUNT.encode()), "text/plain"))]
    headers = {"Authorization": f"Bearer {kit.grant('urn:ds:ctl', sub='carol')}"}
    resp = client.post(
        f"{BASE}/runs",
        data=run_form("count.cwl", json.loads(params)),
        files=files,
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["run_id"]
    workdir = settings.effective_wes_work_dir / run_id
    job = json.loads((workdir / "job.json").read_text())
    assert job["bam"]["location"].startswith(str(workdir / "decrypted"))
    assert plaintext_files(workdir) == []  # nothing decrypted before the run starts

    Worker(settings, db).run_forever(max_runs=1)
    log = client.get(f"{BASE}/runs/{run_id}", headers=headers).json()
    assert log["state"] == "COMPLETE", log["run_log"]
    out = client.get(log["outputs"]["out"]["location"].removeprefix(settings.public_url))
    expected = subprocess.run(
        ["samtools", "view", "-c", str(testdata / BAM)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out.text.strip() == expected
    assert plaintext_files(workdir) == []  # removed with the run
