"""Uploads asked for the Beacon: a sequencing centre's Crypt4GH VCF/BCF
ingested, registered and loaded into the dataset's Beacon from the archived
copy decrypted in memory; refused, rejected, resumed and re-verified.

The files are cut from the 1000 Genomes chr22 VCF with bcftools and
encrypted with the ``crypt4gh`` CLI; the Beacon's answers are compared with
pysam's genotypes of the same plaintext. Real databases (SQLite and
PostgreSQL), real tokens from the development issuer.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pysam
import pytest
import sqlalchemy as sa

from server.auth.roles import add_role
from server.beacon.tables import BeaconGenome, BeaconLoad, BeaconSample, BeaconVariant
from server.db.tables import AuditEvent, DataFile
from server.inbox.ingest import Ingest
from server.inbox.tables import InboxUpload
from server.registry import add_dataset, verify_files
from tests.api.test_inbox import PASSPHRASE, auth, complete, inbox_settings, upload
from tests.support import c4gh

SOURCE = "variants/test_1000G_hg38.vcf.gz"
BASE = "/beacon/v2"


@pytest.fixture
def settings(tmp_path, db_url, kit):
    return inbox_settings(tmp_path, db_url, kit, ingest_lease_seconds=1, beacon_rate_per_minute=0)


@pytest.fixture
def node_pub(settings, db, client):
    from server.c4gh.keys import key_paths, keygen

    keygen(settings)
    add_dataset(db, "cohort", access="controlled", assembly="GRCh38", grant_value="urn:ds:cohort")
    add_role(db, "cohort", "submitter", "centre")
    return key_paths(settings)[1]


@pytest.fixture
def centre(kit) -> dict:
    return auth(kit.registered("centre"))


@pytest.fixture
def researcher(kit) -> dict:
    return auth(kit.grant("urn:ds:cohort", sub="researcher"))


def cut(testdata: Path, out: Path, samples: list[str], fmt: str = "z") -> Path:
    """``samples`` of the 1000 Genomes VCF, cut with bcftools (``fmt``: z VCF.gz, b BCF)."""
    src = testdata / SOURCE
    cmd = ["bcftools", "view", "-s", ",".join(samples), f"-O{fmt}", "-o", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def expected_alleles(path: Path) -> list[tuple]:
    """pysam: ``(chrom, start, ref, alt, ac, an, hom, het)`` of every ALT allele."""
    out = []
    with pysam.VariantFile(str(path)) as vf:
        for rec in vf:
            gts = [s["GT"] for s in rec.samples.values()]
            an = sum(a is not None for gt in gts for a in gt)
            for i, alt in enumerate(rec.alts or (), start=1):
                ac = sum(a == i for gt in gts for a in gt)
                hom = sum(all(a == i for a in gt) for gt in gts)
                het = sum(i in gt for gt in gts) - hom
                out.append((rec.chrom, rec.start, rec.ref, alt, ac, an, hom, het))
    return out


def beacon_allele(client, headers, chrom, start, ref, alt) -> list[dict]:
    params = {
        "referenceName": chrom,
        "start": start,
        "referenceBases": ref,
        "alternateBases": alt,
        "assemblyId": "GRCh38",
        "datasetIds": "cohort",
        "requestedGranularity": "record",
    }
    resp = client.get(f"{BASE}/g_variants", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    sets = resp.json().get("response", {}).get("resultSets", [])
    return [r for s in sets for r in s.get("results", [])]


def beacon_total(client, headers) -> int:
    params = {"referenceName": "chr22", "start": 0, "end": 60_000_000, "datasetIds": "cohort"}
    params["requestedGranularity"] = "count"
    resp = client.get(f"{BASE}/g_variants", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["responseSummary"]["numTotalResults"]


def submit(client, centre, node_pub, plain: Path, tmp_path: Path, **extra) -> dict:
    """``plain`` encrypted for the node with the crypt4gh CLI, uploaded and completed."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    enc = c4gh.encrypt(plain, node_pub, tmp_path / f"{plain.name}.c4gh")
    up = upload(client, centre, enc, dataset="cohort", **extra)
    status, out = complete(client, centre, up)
    assert (status, out["state"]) == (200, "queued"), out
    return up


def counts_match(client, researcher, plain: Path, sample: int = 25) -> None:
    """The Beacon's answer for alleles of ``plain`` (carried or not) is pysam's."""
    alleles = expected_alleles(plain)
    carried = [a for a in alleles if a[4]]
    absent = [a for a in alleles if not a[4]]
    picked = carried[:: max(1, len(carried) // sample)] + absent[:: max(1, len(absent) // 5)]
    assert carried and absent
    for chrom, start, ref, alt, ac, an, hom, het in picked:
        results = beacon_allele(client, researcher, chrom, start, ref, alt)
        if not ac:  # an allele nobody carries is no record of the dataset
            assert results == [], (chrom, start, ref, alt)
            continue
        assert len(results) == 1, (chrom, start, ref, alt)
        freq = results[0]["frequencyInPopulations"][0]["frequencies"][0]
        got = (freq["alleleCount"], freq["alleleNumber"])
        got += (freq["alleleCountHomozygous"], freq["alleleCountHeterozygous"])
        assert got == (ac, an, hom, het), (chrom, start, ref, alt)
    assert beacon_total(client, researcher) == len(carried)


def upload_row(db, up: dict) -> InboxUpload:
    with db.session() as s:
        row = s.scalar(sa.select(InboxUpload).where(InboxUpload.id == up["id"]))
        s.expunge(row)
        return row


def beacon_rows(db) -> dict[str, int]:
    """Rows of the dataset in the Beacon's tables."""
    with db.session() as s:
        return {
            t.__tablename__: s.scalar(
                sa.select(sa.func.count()).select_from(t).where(t.dataset_id == "cohort")
            )
            for t in (BeaconVariant, BeaconLoad, BeaconGenome, BeaconSample)
        }


class TestCreate:
    @pytest.mark.parametrize(
        "filename,kind,expected",
        [
            ("na.bam.c4gh", "data", "is a BAM"),
            ("na.cram.c4gh", "data", "is a CRAM"),
            ("notes.c4gh", "data", "not named as a VCF or BCF"),
            ("na.vcf.gz.tbi.c4gh", "index", "not for an index"),
        ],
    )
    def test_beacon_on_what_holds_no_variants_returns_400(
        self, client, node_pub, centre, db, filename, kind, expected
    ):
        body = {"dataset": "cohort", "filename": filename, "size": 10, "sha256": "0" * 64}
        resp = client.post(
            "/inbox/uploads", json=body | {"kind": kind, "beacon": True}, headers=centre
        )
        assert resp.status_code == 400
        assert expected in resp.json()["msg"]
        with db.session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(InboxUpload)) == 0
        # the same upload without beacon is taken
        resp = client.post("/inbox/uploads", json=body | {"kind": kind}, headers=centre)
        assert resp.status_code == 201


class TestLoad:
    @pytest.mark.parametrize("fmt", ["z", "b"])
    def test_vcf_and_bcf_are_loaded_with_pysam_counts_returns_200(
        self, fmt, client, node_pub, centre, researcher, db, settings, testdata, tmp_path
    ):
        samples = ["HG00096"] if fmt == "z" else ["HG00096", "HG00097", "HG00099"]
        ext = "vcf.gz" if fmt == "z" else "bcf"
        plain = cut(testdata, tmp_path / f"cut.{ext}", samples, fmt)
        up = submit(client, centre, node_pub, plain, tmp_path, beacon=True)
        assert beacon_total(client, researcher) == 0
        done = Ingest(settings, db).run_once()
        assert (done.state, done.beacon_state) == ("ingested", "loaded"), done.reason
        state = client.get(f"/inbox/uploads/{up['id']}", headers=centre).json()
        assert (state["beacon"], state["beacon_state"]) == (True, "loaded")
        with db.session() as s:
            row = s.scalar(sa.select(DataFile))
            assert row.sha256 == c4gh.sha256(plain) and row.location.endswith(".c4gh")
            load = s.scalar(
                sa.select(BeaconLoad).where(BeaconLoad.kind.in_(("genome", "vcf-file")))
            )
            assert (load.status, load.sha256) == ("done", row.sha256)
            assert load.kind == ("genome" if len(samples) == 1 else "vcf-file")
            names = set(s.scalars(sa.select(BeaconSample.name)))
            assert names == set(samples)
            audit = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "ingest.beacon"))
            assert audit.outcome == "granted" and audit.dataset_id == "cohort"
        counts_match(client, researcher, plain)

        # the same genome again, from another upload: registered, the Beacon unchanged
        before = beacon_rows(db)
        submit(client, centre, node_pub, plain, tmp_path / "again", beacon=True)
        again = Ingest(settings, db).run_once()
        assert (again.state, again.beacon_state) == ("ingested", "unchanged"), again.reason
        assert beacon_rows(db) == before

    def test_record_the_loader_refuses_rejects_and_leaves_nothing(
        self, client, node_pub, centre, researcher, db, settings, testdata, tmp_path
    ):
        plain = cut(testdata, tmp_path / "cut.vcf", ["HG00096"], "v")
        lines = plain.read_text().splitlines(keepends=True)
        records = [i for i, line in enumerate(lines) if not line.startswith("#")]
        bad = lines[records[len(records) - 10]].split("\t")
        bad[2] = "010190-1234"  # an ID that looks like a CPR number: never stored
        lines[records[len(records) - 10]] = "\t".join(bad)
        text = tmp_path / "cpr.vcf"
        text.write_text("".join(lines))
        bad_vcf = tmp_path / "cpr.vcf.gz"
        pysam.tabix_compress(str(text), str(bad_vcf))
        # bcftools takes it (so the ingest's own checks pass), the Beacon loader does not
        subprocess.run(["bcftools", "index", "-t", str(bad_vcf)], check=True)
        up = submit(client, centre, node_pub, bad_vcf, tmp_path, beacon=True)
        done = Ingest(settings, db).run_once()
        assert (done.state, done.beacon_state) == ("rejected", "failed")
        assert "CPR" in done.reason and "the Beacon cannot load" in done.reason
        assert "010190-1234" in done.reason
        state = client.get(f"/inbox/uploads/{up['id']}", headers=centre).json()
        assert state["state"] == "rejected" and "CPR" in state["reason"]
        with db.session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(DataFile)) == 0
            outcomes = set(
                s.execute(
                    sa.select(AuditEvent.action, AuditEvent.outcome).where(
                        AuditEvent.action.in_(("ingest", "ingest.beacon"))
                    )
                )
            )
        assert outcomes == {("ingest", "granted"), ("ingest.beacon", "error"), ("ingest", "error")}
        assert beacon_rows(db) == dict.fromkeys(beacon_rows(db), 0)
        assert beacon_total(client, researcher) == 0
        archive = tmp_path / "var" / "archive"
        assert not any(p.is_file() for p in archive.rglob("*"))
        assert (
            client.get("/ga4gh/drs/v1/objects/" + done.accession, headers=researcher).status_code
            == 404
        )

    def test_interrupted_load_resumes_on_the_next_claim(
        self, client, node_pub, centre, researcher, db, settings, testdata, tmp_path, monkeypatch
    ):
        from server.beacon import vcf

        class Crash(BaseException):
            """The worker dies (no handler runs)."""

        real = vcf.load_vcf

        def dies_midway(*args, **kwargs):
            kwargs |= {"batch_size": 500, "stop_after": 1000}
            assert real(*args, **kwargs).status == "interrupted"
            raise Crash()

        plain = cut(testdata, tmp_path / "cut.vcf.gz", ["HG00097"])
        up = submit(client, centre, node_pub, plain, tmp_path, beacon=True)
        monkeypatch.setattr(vcf, "load_vcf", dies_midway)
        with pytest.raises(Crash):
            Ingest(settings, db, "worker-1").run_once()
        monkeypatch.setattr(vcf, "load_vcf", real)
        row = upload_row(db, up)
        assert (row.state, row.beacon_state) == ("ingesting", "loading")
        with db.session() as s:
            load = s.scalar(
                sa.select(BeaconLoad).where(BeaconLoad.kind.in_(("genome", "vcf-file")))
            )
            assert (load.status, load.checkpoint) == ("loading", 1000)
            assert s.scalar(sa.select(sa.func.count()).select_from(DataFile)) == 1
        assert beacon_total(client, researcher) == 0  # staged rows are not visible
        time.sleep(1.2)  # the lease runs out
        done = Ingest(settings, db, "worker-2").run_once()
        assert (done.state, done.beacon_state) == ("ingested", "loaded"), done.reason
        assert done.attempts == 2
        with db.session() as s:
            audit = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "ingest.beacon"))
            assert audit.query["status"] == "resumed"
        counts_match(client, researcher, plain)


class TestVerify:
    def test_tampered_archive_is_reported(
        self, client, node_pub, centre, db, settings, testdata, tmp_path
    ):
        plain = cut(testdata, tmp_path / "cut.vcf.gz", ["HG00096"])
        submit(client, centre, node_pub, plain, tmp_path, beacon=True)
        done = Ingest(settings, db).run_once()
        assert done.state == "ingested", done.reason
        results = verify_files(db, progress=False, settings=settings)
        assert [r.problems for r in results] == [[]]
        with db.session() as s:
            row = s.scalar(sa.select(DataFile))
            archived, index = Path(row.location), Path(row.index_location)
        for target in (archived, index):
            st = target.stat()
            data = bytearray(target.read_bytes())
            data[-100] ^= 0x01  # one bit of the last data segment
            target.write_bytes(bytes(data))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # the time says nothing
        (result,) = verify_files(db, progress=False, settings=settings)
        problems = "; ".join(result.problems)
        assert "file " in problems and "index " in problems
        assert problems.count("damaged or altered") == 2
        assert "modification time" not in problems


class TestFilesAdd:
    def test_files_add_c4gh_with_beacon_loads_it(self, node_pub, db, settings, testdata, tmp_path):
        from click.testing import CliRunner

        from server.cli import main

        plain = cut(testdata, tmp_path / "trio.bcf", ["HG00096", "HG00097", "HG00099"], "b")
        enc = c4gh.encrypt(plain, node_pub, tmp_path / "trio.bcf.c4gh")
        env = {
            "GENOMEPORT_DATABASE_URL": settings.database_url,
            "GENOMEPORT_VAR_DIR": settings.var_dir,
            "GENOMEPORT_C4GH_PASSPHRASE": PASSPHRASE,
        }
        args = ["files", "add", str(enc), "--dataset", "cohort", "--beacon"]
        out = CliRunner().invoke(main, args, env=env)
        assert out.exit_code == 0, out.output
        assert "(Beacon: loaded)" in out.output
        with db.session() as s:
            names = set(s.scalars(sa.select(BeaconSample.name)))
            assert names == {"HG00096", "HG00097", "HG00099"}
        bam = tmp_path / "x.bam.c4gh"
        bam.write_bytes(b"x")
        out = CliRunner().invoke(
            main, ["files", "add", str(bam), "--dataset", "cohort", "--beacon"]
        )
        assert out.exit_code == 2 and "is a BAM" in out.output
