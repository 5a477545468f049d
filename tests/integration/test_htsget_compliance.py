"""The GA4GH htsget-compliance suite against a real node: 12 of 12 cases.

The suite is not on PyPI; ``scripts/htsget-compliance.sh`` installs it from a
snapshot: a source tree or a bare git directory, looked for at
HTSGET_COMPLIANCE_SRC, then var/htsget-compliance/src, then in the local mirror
of public repositories (PUBLIC_MIRROR_DIR, default /work/.mirror, as
``ga4gh+htsget-compliance/repo``). Without a snapshot this test is skipped.
"""

from __future__ import annotations

import pytest

from tests.integration.snapshots import needs_snapshot, run_suite

pytestmark = pytest.mark.slow
SNAPSHOT = ("HTSGET_COMPLIANCE_SRC", "htsget-compliance", "ga4gh+htsget-compliance")


@needs_snapshot(*SNAPSHOT)
def test_compliance_suite_passes_every_case(tmp_path):
    out = run_suite(SNAPSHOT, timeout=600, work=tmp_path / "work")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "htsget compliance: 12/12" in out.stdout
