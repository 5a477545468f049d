"""A sequencing centre and a researcher against a real two-worker node, then a
scan of everything the node wrote for plaintext genomic data.

The centre encrypts BAM, CRAM and VCF files with the ``crypt4gh`` CLI for
the key at ``/inbox/public-key`` and uploads them over HTTP; ``genomeport
ingest work`` (a child process) ingests them; the researcher asks for
C4GH tickets and for plaintext tickets and reads both. Then every file under
the node's ``var/`` (archive, inbox, keys, database, logs) and its temporary
directory is scanned: none may hold BAM, CRAM, VCF or BCF content, compressed
or not, nor any sample of the original files' bytes.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import os
import random
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import requests

from server.auth.roles import add_role
from server.genomics.coords import to_region
from server.registry import add_dataset
from tests.conftest import REPO, node_settings, settings_env, start_server, stop_server
from tests.support import c4gh
from tests.support.processes import clean_env

pytestmark = pytest.mark.slow

FILES = {
    "bam": ("reads/htsnexus_test_NA12878.bam", "BAM", "reads", ("11", 5_000_000, 5_010_000)),
    "cram": ("reads/htsnexus_test_NA12878.cram", "CRAM", "reads", ("11", 5_000_000, 5_010_000)),
    "vcf": ("variants/NA20787.vcf.gz", "VCF", "variants", ("21", 16_000_000, 16_100_000)),
}
PASSPHRASE = "integration-passphrase"
MAGICS = (b"BAM\x01", b"BCF\x02", b"##fileformat=VCF", b"@HD\t", b"@SQ\tSN:")


@pytest.fixture
def settings(tmp_path, db_url, kit):
    base = node_settings(
        tmp_path / "node" / "var", db_url, c4gh_passphrase=PASSPHRASE, inbox_max_chunk_bytes=1 << 20
    )
    return kit.trusting(base)


def plaintext_problems(path: Path, samples: list[bytes]) -> list[str]:
    """Why ``path`` holds plaintext genomic data (empty: it does not)."""
    raw = path.read_bytes()
    views = [raw]
    if raw[:2] == b"\x1f\x8b":  # gzip or BGZF: look inside every member
        with contextlib.suppress(OSError, EOFError, zlib.error):
            views.append(gzip.decompress(raw))
    found = []
    for view in views:
        if view.startswith(b"CRAM"):
            found.append("a CRAM file")
        for magic in MAGICS:
            if magic in view:
                found.append(f"contains {magic!r}")
    for sample in samples:
        if sample in raw:
            found.append("contains bytes of an original file")
            break
    return found


def scan(roots: list[Path], samples: list[bytes]) -> dict[str, list[str]]:
    bad = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                problems = plaintext_problems(path, samples)
                if problems:
                    bad[str(path)] = problems
    return bad


def fetch(tk: dict) -> bytes:
    out = []
    for entry in tk["htsget"]["urls"]:
        if entry["url"].startswith("data:;base64,"):
            out.append(base64.b64decode(entry["url"][len("data:;base64,") :]))
            continue
        resp = requests.get(entry["url"], headers=entry.get("headers", {}), timeout=60)
        assert resp.status_code in (200, 206), resp.text
        out.append(resp.content)
    return b"".join(out)


def records(path: Path, fmt: str, region: str) -> list[str]:
    if fmt in ("BAM", "CRAM"):
        subprocess.run(["samtools", "index", str(path)], check=True, capture_output=True)
        cmd = ["samtools", "view", str(path), region]
    else:
        subprocess.run(["bcftools", "index", "-f", str(path)], check=True, capture_output=True)
        cmd = ["bcftools", "view", "-H", "-r", region, str(path)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()


def send(base: str, headers: dict, enc: Path, **body) -> dict:
    """Upload the encrypted file ``enc`` over HTTP in 1 MiB chunks and complete it
    (``body``: the upload's other fields); the upload, queued."""
    data = enc.read_bytes()
    body |= {"filename": enc.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    resp = requests.post(f"{base}/inbox/uploads", json=body, headers=headers, timeout=10)
    assert resp.status_code == 201, resp.text
    up = resp.json()
    for off in range(0, len(data), 1 << 20):
        resp = requests.put(
            f"{base}/inbox/uploads/{up['id']}",
            params={"offset": off},
            data=data[off : off + (1 << 20)],
            headers=headers | {"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
    resp = requests.post(f"{base}/inbox/uploads/{up['id']}/complete", headers=headers)
    assert resp.json()["state"] == "queued", resp.text
    return up


def ingest_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """``genomeport ingest ARGS`` run as an operator would, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "ingest", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_centre_to_researcher_leaves_no_plaintext_at_rest(settings, db, kit, testdata, tmp_path):
    from server.c4gh.keys import keygen

    keygen(settings)
    add_dataset(db, "ctl", access="controlled", grant_value="urn:ds:ctl")
    add_role(db, "ctl", "submitter", "centre-bot")
    node_tmp = tmp_path / "node" / "tmp"
    node_tmp.mkdir(parents=True)
    env_extra = {"TMPDIR": str(node_tmp), "GENOMEPORT_C4GH_PASSPHRASE": PASSPHRASE}
    server = start_server(settings, port=18141, env_extra=env_extra)
    try:
        base = server.url
        centre = tmp_path / "centre"
        centre.mkdir()
        pub = centre / "node.pub"
        pub.write_bytes(requests.get(f"{base}/inbox/public-key", timeout=10).content)
        submit = {"Authorization": f"Bearer {kit.registered('centre-bot')}"}
        for name, (rel, _, _, _) in FILES.items():
            enc = c4gh.encrypt(testdata / rel, pub, centre / f"{name}.c4gh")
            send(base, submit, enc, dataset="ctl", object_id=name)

        env = clean_env() | settings_env(settings) | env_extra
        done = ingest_cli(env, "work", "--once")
        assert done.returncode == 0, done.stderr
        assert "processed 3 upload(s)" in done.stdout
        listed = ingest_cli(env, "list")
        assert listed.returncode == 0, listed.stderr
        listed = listed.stdout
        assert listed.count(" ingested ") == 3, listed

        researcher = tmp_path / "researcher"
        sec, rpub = c4gh.keygen(researcher)
        read = {"Authorization": f"Bearer {kit.grant('urn:ds:ctl')}"}
        for name, (rel, fmt, endpoint, (ref, start, end)) in FILES.items():
            region = to_region(ref, start, end)
            params = {"referenceName": ref, "start": start, "end": end}
            ext = {"BAM": "bam", "CRAM": "cram", "VCF": "vcf.gz"}[fmt]
            resp = requests.get(
                f"{base}/{endpoint}/{name}",
                params=params | {"encryptionScheme": "C4GH"},
                headers=read | {"client-public-key": c4gh.client_key_header(rpub)},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text
            decrypted = researcher / f"{name}.c4gh-slice.{ext}"
            decrypted.write_bytes(c4gh.decrypt(fetch(resp.json()), sec))
            resp = requests.get(f"{base}/{endpoint}/{name}", params=params, headers=read)
            assert resp.status_code == 200, resp.text
            plain = researcher / f"{name}.plain-slice.{ext}"
            plain.write_bytes(fetch(resp.json()))
            original = researcher / f"{name}.orig.{ext}"
            original.write_bytes((testdata / rel).read_bytes())
            expected = records(original, fmt, region)
            assert expected
            assert records(decrypted, fmt, region) == expected
            assert records(plain, fmt, region) == expected
    finally:
        stop_server(server)

    rng = random.Random(14)
    samples = []
    for rel, _, _, _ in FILES.values():
        raw = (testdata / rel).read_bytes()
        samples += [raw[o : o + 48] for o in (rng.randrange(0, len(raw) - 48) for _ in range(20))]
    roots = [Path(settings.var_dir), node_tmp]
    assert any(Path(settings.var_dir, "archive").rglob("*.c4gh"))
    bad = scan(roots, samples)
    assert not bad, bad
    # the scan itself finds plaintext where there is some
    assert scan([researcher], samples)
    assert os.listdir(Path(settings.var_dir) / "inbox" / "ctl") == []


class _Http:
    """``requests`` against the live node, with the test client's ``get``."""

    def __init__(self, base: str):
        self.base = base

    def get(self, path: str, **kwargs):
        return requests.get(self.base + path, timeout=30, **kwargs)


def test_centre_genome_for_the_beacon_leaves_no_plaintext_at_rest(
    settings, db, kit, testdata, tmp_path
):
    """A single-sample VCF encrypted by the centre and uploaded with beacon: true
    is ingested by the worker process and answered by the Beacon with pysam's
    counts; nothing the node wrote (var/, its temporary directory, anything new
    in /tmp) holds its plaintext."""
    from server.c4gh.keys import keygen
    from tests.api.test_inbox_beacon import counts_match

    settings = settings.with_overrides(beacon_rate_per_minute=0)
    keygen(settings)
    add_dataset(db, "cohort", access="controlled", assembly="GRCh38", grant_value="urn:ds:cohort")
    add_role(db, "cohort", "submitter", "centre-bot")
    centre = tmp_path / "centre"
    centre.mkdir()
    plain = centre / "HG00096.vcf.gz"
    subprocess.run(
        ["bcftools", "view", "-s", "HG00096", "-Oz", "-o", str(plain)]
        + [str(testdata / "variants/test_1000G_hg38.vcf.gz")],
        check=True,
        capture_output=True,
    )
    node_tmp = tmp_path / "node" / "tmp"
    node_tmp.mkdir(parents=True)
    env_extra = {"TMPDIR": str(node_tmp), "GENOMEPORT_C4GH_PASSPHRASE": PASSPHRASE}
    in_tmp = set(os.listdir("/tmp"))
    server = start_server(settings, port=18143, env_extra=env_extra)
    try:
        base = server.url
        pub = centre / "node.pub"
        pub.write_bytes(requests.get(f"{base}/inbox/public-key", timeout=10).content)
        submit = {"Authorization": f"Bearer {kit.registered('centre-bot')}"}
        enc = c4gh.encrypt(plain, pub, centre / "HG00096.vcf.gz.c4gh")
        up = send(base, submit, enc, dataset="cohort", beacon=True)

        env = clean_env() | settings_env(settings) | env_extra
        done = ingest_cli(env, "work", "--once", "--quiet")
        assert done.returncode == 0, done.stderr
        assert "processed 1 upload(s)" in done.stdout
        listed = ingest_cli(env, "list")
        assert listed.returncode == 0, listed.stderr
        assert " ingested " in listed.stdout and "beacon:loaded" in listed.stdout, listed.stdout
        state = requests.get(f"{base}/inbox/uploads/{up['id']}", headers=submit, timeout=10)
        assert state.json()["beacon_state"] == "loaded"
        researcher = {"Authorization": f"Bearer {kit.grant('urn:ds:cohort', sub='researcher')}"}
        counts_match(_Http(base), researcher, plain, sample=12)
    finally:
        stop_server(server)

    raw = plain.read_bytes()
    text = gzip.decompress(raw)
    rng = random.Random(96)
    samples = [raw[o : o + 48] for o in (rng.randrange(0, len(raw) - 48) for _ in range(40))]
    # the genome's own lines (its genotype ends a line: no other file has these bytes)
    ends = [m.start() for m in re.finditer(b"\tGT\t", text)]
    samples += [text[i - 30 : i + 12] for i in rng.sample(ends, 40)]
    roots = [Path(settings.var_dir), node_tmp]
    assert any(Path(settings.var_dir, "archive").rglob("*.c4gh"))
    assert not scan(roots, samples), scan(roots, samples)
    new = [Path("/tmp", n) for n in set(os.listdir("/tmp")) - in_tmp]
    leaked = {}
    for entry in new:
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        for path in files:
            with contextlib.suppress(OSError):
                if any(sample in path.read_bytes() for sample in samples):
                    leaked[str(path)] = "bytes of the genome"
    assert not leaked, leaked
    # the samples find the plaintext where there is some
    assert scan([centre], samples)
    assert os.listdir(Path(settings.var_dir) / "inbox" / "cohort") == []
