"""The GA4GH DRS compliance suite (auth none, bearer, passport) and drs-cli against a real node.

The suite is not on PyPI; ``scripts/drs-compliance.sh`` runs it from a
snapshot: a source tree or a bare git directory, looked for at
DRS_COMPLIANCE_SRC, then var/drs-compliance/src, then in the local mirror of
public repositories (PUBLIC_MIRROR_DIR, default /work/.mirror, as
``ga4gh+drs-compliance-suite/repo``). The suite's requirements and PyPI
drs-cli are installed into two virtualenvs under var/drs-compliance/, built on
first use and reused (DRS_COMPLIANCE_PYTHON / DRS_CLI_PYTHON override them).
Without a snapshot this test is skipped.
"""

from __future__ import annotations

import pytest

from tests.integration.snapshots import needs_snapshot, run_suite

pytestmark = pytest.mark.slow


SNAPSHOT = ("DRS_COMPLIANCE_SRC", "drs-compliance", "ga4gh+drs-compliance-suite")


@needs_snapshot(*SNAPSHOT)
def test_compliance_suite_and_drs_cli_report_no_failures():
    out = run_suite(SNAPSHOT, timeout=540)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "0 failure(s)"
    for kind in ("none", "bearer", "passport"):
        assert f"compliance suite, auth {kind}:" in out.stdout
    assert out.stdout.count("drs-cli ") == 4 and "FAIL" not in out.stdout
