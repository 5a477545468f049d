"""The GA4GH htsget-compliance suite against a real node: 12 of 12 cases.

The suite is not on PyPI; ``scripts/htsget-compliance.sh`` installs it from a
snapshot: a source tree or a bare git directory, looked for at
HTSGET_COMPLIANCE_SRC, then var/htsget-compliance/src, then in the local mirror
of public repositories (PUBLIC_MIRROR_DIR, default /work/.mirror, as
``ga4gh+htsget-compliance/repo``). Without a snapshot this test is skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.snapshots import find_snapshot

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _snapshot() -> Path | None:
    return find_snapshot("HTSGET_COMPLIANCE_SRC", "htsget-compliance", "ga4gh+htsget-compliance")


@pytest.mark.skipif(
    _snapshot() is None, reason="no htsget-compliance snapshot (set HTSGET_COMPLIANCE_SRC)"
)
def test_compliance_suite_passes_every_case(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")},
        "HTSGET_COMPLIANCE_SRC": str(_snapshot()),
        "HTSGET_COMPLIANCE_WORK": str(tmp_path / "work"),
    }
    venv = REPO / "var" / "htsget-compliance" / "venv"
    if venv.exists():  # reuse an installed suite
        (tmp_path / "work").mkdir()
        (tmp_path / "work" / "venv").symlink_to(venv)
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "htsget-compliance.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "htsget compliance: 12/12" in out.stdout
