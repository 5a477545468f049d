"""EGA's beacon-verifier-v2 against a real node (gunicorn, 2 workers) serving a
public dataset at the record tier.

The verifier is not on PyPI; ``scripts/beacon-verifier.sh`` runs it from a
snapshot: a source tree or a bare git directory, looked for at
BEACON_VERIFIER_SRC, then var/beacon-verifier/src, then in the local mirror of
public repositories (PUBLIC_MIRROR_DIR, default /work/.mirror, as
``EGA-archive+beacon-verifier-v2/repo``). Without a snapshot this test is
skipped.

The only errors allowed are the verifier's own, listed in the README: it
fills in the URLs of ``/g_variants/{id}/...`` by replacing
``{variantInternalId}``, while the specification's default beaconMap (and so
this node's /map) writes ``{id}``; it then requests the literal ``{id}``, gets
this node's 400 (not a variant id) and validates that error document as a
boolean response.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.snapshots import needs_snapshot, run_suite
from tests.unit.beacon.schemas import ROOT

pytestmark = pytest.mark.slow

VERIFIERS_OWN = re.compile(r"/beacon/v2/g_variants/\{id\}/(analyses|biosamples|individuals|runs)$")


SNAPSHOT = ("BEACON_VERIFIER_SRC", "beacon-verifier", "EGA-archive+beacon-verifier-v2")


@needs_snapshot(*SNAPSHOT)
def test_verifier_reports_only_its_own_errors(tmp_path):
    work = tmp_path / "work"
    out = run_suite(SNAPSHOT, timeout=900, work=work)
    print(out.stdout)
    assert (work / "report.json").exists(), out.stdout + out.stderr[-3000:]
    report = json.loads((work / "report.json").read_text())
    assert not report["crashes"], report["crashes"]
    # it checked every endpoint of the map: roots and cross-entry endpoints
    spec = json.loads((ROOT / "models/json/beacon-v2-default-model/beaconMap.json").read_text())
    cross = sum(len(ep["endpoints"]) for ep in spec["endpointSets"].values())
    assert len(report["map"]) == len(spec["endpointSets"]) + cross
    checked = [u for u in report["per_url"] if "/beacon/v2/" in u]
    assert len(checked) >= len(report["map"]), checked
    errors = {u: e for u, e in report["per_url"].items() if e}
    theirs = {u: e for u, e in errors.items() if VERIFIERS_OWN.search(u)}
    assert errors == theirs, {u: e for u, e in errors.items() if u not in theirs}
    for url, code in report["fetched"]:
        assert code == 200 or VERIFIERS_OWN.search(url), (url, code)
    assert len(report["errors"]) == sum(len(e) for e in theirs.values())
