"""Audit log queries and the `genomeport audit` / `genomeport token` commands."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from server import audit
from server.auth.tokens import caller_from_request
from server.cli import Ctx, main
from server.db.tables import AuditEvent
from server.errors import InvalidInput

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def events(db):
    hour = dt.timedelta(hours=1)
    columns = ("caller", "api", "action", "dataset_id", "outcome", "status", "time")
    rows = [
        ("https://idp|alice", "drs", "get_object", "ctl", "granted", 200, NOW - 3 * hour),
        ("anonymous", "htsget", "reads", "ctl", "denied", 401, NOW - hour),
        ("https://idp|bob", "drs", "access_url", "pub", "granted", 200, NOW),
    ]
    more = [
        {"object_id": "a.bam"},
        {"query": {"referenceName": "chr1", "start": 0, "end": 100}},
        {
            "query": {
                "url": "https://x/data/file/1?exp=1&sig=abcdef",
                "passports": ["eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"],
            }
        },
    ]
    rows = [
        dict(zip(columns, row, strict=True), **extra) for row, extra in zip(rows, more, strict=True)
    ]
    with db.session() as session:
        for row in rows:
            session.add(AuditEvent(**row))
    return db


def test_filters(events):
    q = lambda **kw: [r["caller"] for r in audit.query(events, audit.AuditFilter(**kw))]  # noqa
    assert q() == ["https://idp|bob", "anonymous", "https://idp|alice"]
    assert q(caller="*|alice") == ["https://idp|alice"]
    assert q(dataset="ctl", outcome="denied") == ["anonymous"]
    assert q(api="drs", since=NOW - dt.timedelta(hours=2)) == ["https://idp|bob"]
    assert q(until=NOW - dt.timedelta(hours=2)) == ["https://idp|alice"]
    assert q(limit=1) == ["https://idp|bob"]


def test_output_never_shows_tokens_or_signatures(events):
    row = audit.query(events, audit.AuditFilter(caller="https://idp|bob"))[0]
    text = json.dumps(row)
    assert "abcdef" not in text and "eyJ" not in text
    assert row["query"]["passports"] == "[redacted]"


def test_summary_counts(events):
    rows = audit.summary(events, audit.AuditFilter(api="drs"))
    assert rows == [
        {"api": "drs", "outcome": "granted", "dataset_id": "ctl", "count": 1},
        {"api": "drs", "outcome": "granted", "dataset_id": "pub", "count": 1},
    ]


def test_relative_and_bad_times():
    assert audit.parse_time("-2h") < NOW
    assert audit.parse_time("2026-01-02").tzinfo is not None
    with pytest.raises(InvalidInput, match="yesterday-ish"):
        audit.parse_time("yesterday-ish")


def test_cli_list_json_and_text(settings, events):
    runner = CliRunner()
    result = runner.invoke(
        main, ["audit", "list", "--json", "--dataset", "ctl"], obj=Ctx(settings, events)
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.splitlines()]
    assert [x["caller"] for x in lines] == ["anonymous", "https://idp|alice"]
    text = runner.invoke(main, ["audit", "list", "--outcome", "denied"], obj=Ctx(settings, events))
    assert text.exit_code == 0 and "anonymous" in text.output and "401" in text.output
    bad = runner.invoke(main, ["audit", "list", "--since", "whenever"], obj=Ctx(settings, events))
    assert bad.exit_code != 0 and "cannot read time" in bad.output


def test_cli_summary(settings, events):
    result = CliRunner().invoke(main, ["audit", "summary", "--json"], obj=Ctx(settings, events))
    assert result.exit_code == 0, result.output
    assert sum(r["count"] for r in json.loads(result.output)) == 3


def test_token_mint_cli_makes_a_token_the_node_accepts(settings, db):
    runner = CliRunner()
    obj = Ctx(settings, db)
    cfg = runner.invoke(main, ["token", "config"], obj=obj)
    assert cfg.exit_code == 0, cfg.output
    trusting = settings.with_overrides(auth_issuers=tuple(json.loads(cfg.output)))
    minted = runner.invoke(
        main,
        [
            "token",
            "mint",
            "--sub",
            "alice",
            "--grant",
            "ds1",
            "--registered",
            "--expires-in",
            "600",
        ],
        obj=obj,
    )
    assert minted.exit_code == 0, minted.output
    caller = caller_from_request(trusting, "Bearer " + minted.output.strip())
    assert caller.controlled == {"ds1"} and caller.registered, caller.error
