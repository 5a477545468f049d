"""The GA4GH DRS compliance suite (auth none, bearer, passport) and drs-cli against a real node.

Needs the suite's source and a virtualenv with its requirements, and a
virtualenv with drs-cli (see tests/integration/drs_interop.py):
DRS_COMPLIANCE_SRC, DRS_COMPLIANCE_PYTHON, DRS_CLI_PYTHON. Without them this
test is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
NEEDED = ("DRS_COMPLIANCE_SRC", "DRS_COMPLIANCE_PYTHON", "DRS_CLI_PYTHON")
READY = all(os.environ.get(k) and Path(os.environ[k]).exists() for k in NEEDED)


@pytest.mark.skipif(not READY, reason="set " + ", ".join(NEEDED))
def test_compliance_suite_and_drs_cli_report_no_failures():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    out = subprocess.run([sys.executable, str(HERE / "drs_interop.py"),
                          "--suite", os.environ["DRS_COMPLIANCE_SRC"],
                          "--suite-python", os.environ["DRS_COMPLIANCE_PYTHON"],
                          "--drs-cli-python", os.environ["DRS_CLI_PYTHON"]],
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 failure(s)" in out.stdout
    for kind in ("none", "bearer", "passport"):
        assert f"compliance suite, auth {kind}:" in out.stdout
    assert out.stdout.count("drs-cli ") == 4 and "FAIL" not in out.stdout
