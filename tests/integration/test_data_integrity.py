"""Controlled data stays controlled on the data plane, against the real node.

* a signed ``/data/`` URL dies with the visa behind it (and would not with the
  TTL alone: the same attack with the grant expiry switched off succeeds);
* every ``/data/`` request, refusals included, is a row of ``genomeport audit
  list`` (the CLI run for real) with the caller, object, byte range, status
  and bytes sent, and never the signature;
* a file changed on disk (touched, appended to) is refused by the data plane,
  audited, and reported by ``genomeport files verify`` (exit status 1).

The node is ``genomeport serve`` (gunicorn, 2 workers) over SQLite and
PostgreSQL (the ``settings``/``db`` fixtures); tokens are real signed passports
from the development issuer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

import httpx
import pytest

from server.registry import add_dataset, add_files
from tests.conftest import REPO, settings_env, start_server, stop_server
from tests.unit.auth.tokenkit import make_kit

GRANT = "urn:ds:integrity"


@pytest.fixture
def kit(tmp_path):
    return make_kit(tmp_path / "kit")


@pytest.fixture
def trusted(settings, kit):
    return kit.trusting(settings)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _data_url(ticket: dict) -> str:
    return next(u["url"] for u in ticket["htsget"]["urls"] if u["url"].startswith("http"))


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    env.update(settings_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _audit_rows(settings, want: int, *filters: str) -> list[dict]:
    """``genomeport audit list --json`` rows, waiting for ``want`` of them: a download's
    row is written by the worker just after its response."""
    deadline = time.monotonic() + 30
    while True:
        out = _cli(settings, "audit", "list", "--json", "--limit", "1000", *filters)
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


# ------------------------------------------------------------ expiry
def test_signed_url_stops_working_when_the_visa_behind_it_expires(trusted, db, kit, testdata):
    add_dataset(db, "ctl", access="controlled", grant_value=GRANT)
    add_files(
        db, [testdata / "reads/HG00100.chr17slice.bam"], "ctl", object_id="ctlreads", progress=False
    )
    server = start_server(trusted, workers=2)
    try:
        visa_exp = int(time.time()) + 3
        token = kit.passport(
            "alice",
            [kit.issuer.grant_visa("alice", GRANT, expires_in=visa_exp - int(time.time()))],
            expires_in=3600,
        )
        with httpx.Client(timeout=30) as client:
            r = client.get(f"{server.url}/reads/ctlreads", headers=_bearer(token))
            assert r.status_code == 200, r.text
            url = _data_url(r.json())
            exp = int(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["exp"])
            # the TTL (300 s) would outlive the visa; the URL does not
            assert exp <= visa_exp < int(time.time()) + trusted.data_url_ttl
            got = client.get(url, headers={"Range": "bytes=0-99"})
            assert got.status_code == 206 and len(got.content) == 100
            while time.time() <= exp + 0.5:
                time.sleep(0.25)
            refused = client.get(url, headers={"Range": "bytes=0-99"})
            assert refused.status_code == 403
            assert refused.json()["htsget"]["error"] == "PermissionDenied"
            assert "expired" in refused.json()["htsget"]["message"]
            # and the passport itself no longer opens the dataset
            assert client.get(
                f"{server.url}/reads/ctlreads", headers=_bearer(token)
            ).status_code in (401, 403)
    finally:
        stop_server(server)


def test_with_the_ttl_alone_the_same_url_outlives_the_visa(trusted, db, kit, testdata, monkeypatch):
    """The protection switched off (URLs expire by the TTL only, the old behaviour):
    the URL issued before the visa expired still serves bytes after it."""
    import server.auth
    from server.web.app import create_app

    add_dataset(db, "ctl", access="controlled", grant_value=GRANT)
    add_files(
        db, [testdata / "reads/HG00100.chr17slice.bam"], "ctl", object_id="ctlreads", progress=False
    )
    app = create_app(trusted)
    try:
        with app.test_client() as client:
            token = kit.passport("alice", [kit.issuer.grant_visa("alice", GRANT, expires_in=2)])
            grant_end = time.time() + 2

            def protected():
                r = client.get("/reads/ctlreads", headers=_bearer(token))
                assert r.status_code == 200, r.text
                return _data_url(r.json())

            url_on = protected()
            monkeypatch.setattr(server.auth, "access_expires", lambda caller, access: None)
            url_off = protected()
            while time.time() <= grant_end + 1:
                time.sleep(0.25)
            assert client.get(url_on, headers={"Range": "bytes=0-9"}).status_code == 403
            off = client.get(url_off, headers={"Range": "bytes=0-9"})
            assert off.status_code == 206 and len(off.content) == 10
    finally:
        app.app.extensions["genomeport"].db.dispose()


# ------------------------------------------------------------- audit
def test_every_data_download_appears_in_audit_list(trusted, db, kit, testdata):
    bam = testdata / "reads/HG00100.chr17slice.bam"
    add_dataset(db, "ctl", access="controlled", grant_value=GRANT)
    add_dataset(db, "pub", access="public")
    add_files(db, [bam], "ctl", object_id="ctlreads", progress=False)
    add_files(
        db, [testdata / "variants/cyvcf2_test.vcf.gz"], "pub", object_id="pubvars", progress=False
    )
    size = bam.stat().st_size
    token = kit.grant(GRANT, sub="alice")
    alice = f"{kit.issuer.issuer}|alice"
    server = start_server(trusted, workers=2)
    try:
        with httpx.Client(timeout=30) as client:
            url = _data_url(
                client.get(f"{server.url}/reads/ctlreads", headers=_bearer(token)).json()
            )
            assert client.get(url, headers={"Range": "bytes=10-109"}).status_code == 206
            assert client.get(url).status_code == 200
            assert client.head(url).status_code == 200
            assert client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
            parts = urllib.parse.urlsplit(url)
            q = dict(urllib.parse.parse_qsl(parts.query))
            forged = parts._replace(query=urllib.parse.urlencode({**q, "who": "mallory"})).geturl()
            assert client.get(forged).status_code == 403
            drs = client.get(
                f"{server.url}/ga4gh/drs/v1/objects/ctlreads.bam.bai/access/https",
                headers=_bearer(token),
            )
            assert drs.status_code == 200, drs.text
            index_bytes = client.get(drs.json()["url"]).content
            assert index_bytes == (testdata / "reads/HG00100.chr17slice.bam.bai").read_bytes()
            anon = _data_url(client.get(f"{server.url}/variants/pubvars").json())
            assert client.get(anon, headers={"Range": "bytes=0-9"}).status_code == 206
        rows = _audit_rows(trusted, 7, "--api", "data")
        everything = _audit_rows(trusted, 10)
    finally:
        stop_server(server)

    assert len(rows) == 7, rows
    by = {}
    for row in rows:
        by.setdefault((row["action"], row["status"]), []).append(row)
    ranged = by[("download.file", 206)]
    mine = [r for r in ranged if r["caller"] == alice]
    assert len(mine) == 1
    assert mine[0]["object_id"] == "ctlreads" and mine[0]["dataset_id"] == "ctl"
    assert mine[0]["outcome"] == "granted"
    assert mine[0]["query"]["start"] == 10 and mine[0]["query"]["end"] == 110
    assert mine[0]["query"]["bytes"] == 100 and mine[0]["query"]["format"] == "BAM"
    whole = by[("download.file", 200)][0]
    assert whole["caller"] == alice and whole["query"]["bytes"] == size
    assert whole["query"]["start"] == 0 and whole["query"]["end"] == size
    head = by[("head.file", 200)][0]
    assert head["caller"] == alice and head["query"]["bytes"] == 0
    past = by[("download.file", 416)][0]
    assert past["caller"] == alice and past["outcome"] == "error" and past["query"]["bytes"] == 0
    forged_row = by[("download.file", 403)][0]
    assert forged_row["outcome"] == "denied" and forged_row["caller"] == "anonymous"
    index_row = by[("download.index", 200)][0]
    assert index_row["caller"] == alice and index_row["object_id"] == "ctlreads"
    assert index_row["query"]["bytes"] == len(index_bytes) and index_row["query"]["format"] == "BAI"
    public = [r for r in ranged if r["caller"] == "anonymous"]
    assert public and public[0]["object_id"] == "pubvars" and public[0]["dataset_id"] == "pub"
    # never the signature or the query string
    text = json.dumps(rows)
    assert q["sig"] not in text and "sig=" not in text and "exp=" not in text
    # the downloads sit next to the decisions that granted them
    apis = {r["api"] for r in everything}
    assert {"htsget", "drs", "data"} <= apis
    human = _cli(trusted, "audit", "list", "--api", "data")
    assert human.returncode == 0 and "download.file" in human.stdout and alice in human.stdout


# ------------------------------------------------------------ changes
def test_changed_file_is_refused_audited_and_reported_by_files_verify(
    settings, db, testdata, tmp_path
):
    src = testdata / "reads/HG00100.chr17slice.bam"
    bam = tmp_path / "data" / "changing.bam"
    bam.parent.mkdir()
    shutil.copy(src, bam)
    shutil.copy(str(src) + ".bai", str(bam) + ".bai")
    add_dataset(db, "pub", access="public")
    add_files(db, [bam], "pub", object_id="changing", progress=False)
    verify = _cli(settings, "files", "verify", "--quiet")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    server = start_server(settings, workers=2)
    try:
        with httpx.Client(timeout=30) as client:
            url = _data_url(client.get(f"{server.url}/reads/changing").json())
            assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
            stat = bam.stat()
            os.utime(bam, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touch
            touched = client.get(url, headers={"Range": "bytes=0-9"})
            assert touched.status_code == 503
            assert touched.json()["htsget"]["error"] == "DataChanged"
            assert "changed" in touched.json()["htsget"]["message"]
            ticket = client.get(f"{server.url}/reads/changing")  # no new ticket either
            assert ticket.status_code == 503 and ticket.json()["htsget"]["error"] == "DataChanged"
            out = _cli(settings, "files", "verify")
            assert out.returncode == 1
            assert "CHANGED: changing BAM: file modification time changed" in out.stdout
            with open(bam, "ab") as fh:  # append: size, checksums and mtime differ
                fh.write(b"\0" * 10)
            assert client.get(url).status_code == 503
            out = _cli(settings, "files", "verify", "changing")
            assert out.returncode == 1
            assert "file size" in out.stdout and "sha-256" in out.stdout and "md5" in out.stdout
        rows = _audit_rows(settings, 3, "--api", "data", "--outcome", "error")
    finally:
        stop_server(server)
    refused = [r for r in rows if r["status"] == 503]
    assert len(refused) == 2 and all(r["object_id"] == "changing" for r in refused)
    assert all(r["query"]["error"] == "DataChanged" and r["query"]["bytes"] == 0 for r in refused)


def test_without_the_size_and_mtime_check_a_changed_file_is_served(
    settings, db, testdata, tmp_path, monkeypatch
):
    """The protection switched off (the registered size and mtime not compared): the
    appended bytes go out under the registered checksum."""
    from server.web import dataplane
    from server.web.app import create_app

    src = testdata / "reads/HG00100.chr17slice.bam"
    bam = tmp_path / "changed.bam"
    shutil.copy(src, bam)
    shutil.copy(str(src) + ".bai", str(bam) + ".bai")
    add_dataset(db, "pub", access="public")
    add_files(db, [bam], "pub", object_id="changed", progress=False)
    app = create_app(settings)
    try:
        with app.test_client() as client:
            url = _data_url(client.get("/reads/changed").json())
            with open(bam, "ab") as fh:
                fh.write(b"tampered")
            assert client.get(url).status_code == 503
            original = dataplane.RESOLVERS["file"]

            def unchecked(settings_, db_, ident):
                target = original(settings_, db_, ident)
                return dataplane.Target(target.location, target.object_id, target.dataset_id)

            monkeypatch.setitem(dataplane.RESOLVERS, "file", unchecked)
            app2 = create_app(settings)  # a fresh data plane (no cached target)
            with app2.test_client() as client2:
                served = client2.get(url)
                assert served.status_code == 200 and served.content.endswith(b"tampered")
            app2.app.extensions["genomeport"].db.dispose()
    finally:
        app.app.extensions["genomeport"].db.dispose()


# ---------------------------------------------------------- revocation
def test_a_registered_grant_check_closes_urls_already_issued(
    trusted, db, kit, testdata, monkeypatch
):
    """The revocation hook: a check run at serve time with the URL's caller and dataset
    closes a URL issued before the grant was withdrawn; without it the URL serves."""
    from server.errors import PermissionDenied
    from server.web import dataplane
    from server.web.app import create_app

    add_dataset(db, "ctl", access="controlled", grant_value=GRANT)
    add_files(
        db, [testdata / "reads/HG00100.chr17slice.bam"], "ctl", object_id="ctlreads", progress=False
    )
    revoked: set[tuple[str, str]] = set()

    def check(settings_, db_, caller, dataset_id):
        if (caller, dataset_id) in revoked:
            raise PermissionDenied("the grant behind this URL was revoked")

    monkeypatch.setattr(dataplane, "GRANT_CHECKS", (check,))
    app = create_app(trusted)
    try:
        with app.test_client() as client:
            token = kit.grant(GRANT, sub="alice")
            url = _data_url(client.get("/reads/ctlreads", headers=_bearer(token)).json())
            assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
            revoked.add((f"{kit.issuer.issuer}|alice", "ctl"))
            refused = client.get(url, headers={"Range": "bytes=0-9"})
            assert refused.status_code == 403 and "revoked" in refused.text
            monkeypatch.setattr(dataplane, "GRANT_CHECKS", ())
            assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    finally:
        app.app.extensions["genomeport"].db.dispose()
