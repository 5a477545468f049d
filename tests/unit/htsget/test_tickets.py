"""Ticket assembly without HTTP: block splitting, inline data, one EOF, ordering."""

from __future__ import annotations

import base64
from pathlib import Path

import pysam
import pytest

from server import audit
from server.auth import ANONYMOUS
from server.db import Database
from server.errors import NotFound, UnsupportedFormat
from server.genomics import bgzf
from server.htsget import service
from server.registry import add_dataset, add_files
from server.settings import Settings

TESTDATA = Path(__file__).resolve().parents[3].parent / "shared" / "testdata"
BAM = TESTDATA / "reads" / "htsnexus_test_NA12878.bam"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tickets")
    settings = Settings(var_dir=str(tmp), signing_key="k" * 32, htsget_block_size=100_000)
    db = Database(f"sqlite:///{tmp / 'db.sqlite'}")
    db.upgrade()
    add_dataset(db, "pub", access="public")
    add_files(db, [BAM], "pub", object_id="na", progress=False)

    def events() -> list[dict]:  # the audit rows, oldest first
        return list(reversed(audit.query(db, audit.AuditFilter(limit=1000))))

    yield service.Context(settings, db, ANONYMOUS), events
    db.dispose()


def _join(tk: dict) -> bytes:
    raw = BAM.read_bytes()
    out = []
    for entry in tk["htsget"]["urls"]:
        if entry["url"].startswith("data:;base64,"):
            out.append(base64.b64decode(entry["url"][len("data:;base64,") :]))
        else:
            first, last = entry["headers"]["Range"].split("=")[1].split("-")
            out.append(raw[int(first) : int(last) + 1])
    return b"".join(out)


def test_large_ranges_are_split_into_blocks(ctx, tmp_path):
    context, events = ctx
    tk = service.ticket(context, service.parse_get("reads", "na", {}))
    ranges = [u["headers"]["Range"] for u in tk["htsget"]["urls"] if "headers" in u]
    spans = [tuple(int(x) for x in r.split("=")[1].split("-")) for r in ranges]
    assert len(spans) > 20 and all(b - a + 1 <= 100_000 for a, b in spans)
    assert all(
        spans[i][1] + 1 == spans[i + 1][0] for i in range(len(spans) - 1)
    )  # contiguous, in order
    data = _join(tk)
    assert data.endswith(bgzf.EOF_BLOCK) and data.count(bgzf.EOF_BLOCK) == 1
    out = tmp_path / "all.bam"
    out.write_bytes(data)
    with pysam.AlignmentFile(str(out)) as fh:
        assert sum(1 for _ in fh.fetch(until_eof=True)) == 39918
    assert events()[-1]["outcome"] == "granted" and events()[-1]["object_id"] == "na"


def test_multi_region_post_is_one_header_one_eof_in_file_order(ctx):
    context, _ = ctx
    body = (
        b'{"regions":[{"referenceName":"20","start":6000000,"end":6001000},'
        b'{"referenceName":"11","start":5000000,"end":5001000}]}'
    )
    tk = service.ticket(context, service.parse_post("reads", "na", body))
    urls = tk["htsget"]["urls"]
    classes = [u["class"] for u in urls]
    assert classes == sorted(classes, key=lambda c: c != "header")  # header first
    starts = [
        int(u["headers"]["Range"].split("=")[1].split("-")[0])
        for u in urls
        if "headers" in u and u["class"] == "body"
    ]
    assert starts == sorted(starts)
    assert _join(tk).count(bgzf.EOF_BLOCK) == 1


def test_errors_are_audited(ctx):
    context, events = ctx
    with pytest.raises(NotFound):
        service.ticket(context, service.parse_get("reads", "nope", {}))
    assert events()[-1]["outcome"] == "error" and events()[-1]["status"] == 404
    with pytest.raises(UnsupportedFormat):
        service.ticket(context, service.parse_get("reads", "na", {"format": "CRAM"}))
    assert events()[-1]["status"] == 400
