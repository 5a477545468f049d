"""DRS interoperability run: the GA4GH DRS compliance suite and drs-cli against a real node.

Not collected by pytest (it needs the external tools). ``scripts/drs-compliance.sh``
finds a snapshot of the suite, builds both virtualenvs under var/drs-compliance/
and runs it (tests/integration/test_drs_interop.py does so whenever a snapshot
exists); by hand:

    python tests/integration/drs_interop.py --suite /path/to/drs-compliance-suite \\
        --suite-python /path/to/suite-venv/bin/python --drs-cli-python /path/to/venv/bin/python

* the suite (github.com/ga4gh/drs-compliance-suite, from source, its
  requirements.txt installed in its own virtualenv) is run for auth types
  ``none`` (public dataset), ``bearer`` and ``passport`` (controlled dataset,
  real tokens from the development issuer);
* drs-cli (PyPI ``drs-cli``) reads every object and access URL with a bearer
  token; the bytes behind each access URL are downloaded and their sha-256
  compared with the object's checksum.

Prints one line per check and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
TESTDATA = REPO.parent / "shared" / "testdata"
# The suite validates service-info against GA4GH service-info 1.0 with no extra
# properties (it targets DRS 1.2); DRS 1.5 requires `drs` and `maxBulkRequestLength`.
KNOWN_SERVICE_INFO = (
    "Additional properties are not allowed ('drs', 'maxBulkRequestLength' were unexpected)"
)

DRS_CLI_SCRIPT = r"""
import hashlib, json, sys
import requests
from drs_cli.client import DRSClient
base, token, ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
host, port = base.split("://")[1].split(":")
client = DRSClient(uri=f"http://{host}", port=int(port), use_http=True, token=token)
out = {}
for drs_id in ids:
    obj = client.get_object(f"drs://{host}/{drs_id}")
    sha = next(c.checksum for c in obj.checksums if c.type == "sha-256")
    url = client.get_access_url(drs_id, obj.access_methods[0].access_id).url
    data = requests.get(url, timeout=30).content
    out[drs_id] = {
        "size_ok": len(data) == obj.size,
        "sha_ok": hashlib.sha256(data).hexdigest() == sha,
        "self_uri": obj.self_uri,
    }
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True, help="drs-compliance-suite source directory")
    parser.add_argument("--suite-python", required=True, help="python of the suite's virtualenv")
    parser.add_argument("--drs-cli-python", required=True, help="python with drs-cli installed")
    args = parser.parse_args()

    from server.db import Database
    from server.registry import add_dataset, add_files
    from server.settings import Settings
    from tests.conftest import start_server, stop_server
    from tests.unit.auth.tokenkit import make_kit

    work = Path(tempfile.mkdtemp(prefix="drs-interop-"))
    kit = make_kit(work)
    settings = kit.trusting(Settings(var_dir=str(work / "var"), signing_key=uuid.uuid4().hex))
    db = Database(settings.effective_database_url)
    db.upgrade()
    add_dataset(db, "pub", access="public")
    add_dataset(db, "ctl", access="controlled")
    add_files(db, [TESTDATA / "variants/spec-v4.3.vcf.gz"], "pub", object_id="spec", progress=False)
    add_files(
        db, [TESTDATA / "reads/HG00100.chr17slice.bam"], "ctl", object_id="hg", progress=False
    )
    db.dispose()

    failures = 0
    server = start_server(settings, workers=1)
    try:
        base = server.url + "/ga4gh/drs/v1"
        token = kit.grant("ctl")
        plans = {
            "none": (
                "",
                [("spec.vcf.gz", False), ("spec.vcf.gz.tbi", False), ("spec.vcf.gz.bundle", True)],
            ),
            "bearer": (token, [("hg.bam", False), ("hg.bam.bai", False), ("hg.bam.bundle", True)]),
            "passport": (
                [token],
                [("hg.bam", False), ("hg.bam.bai", False), ("hg.bam.bundle", True)],
            ),
        }
        for kind, (tok, objs) in plans.items():
            config = {
                "service_info": {"auth_type": "none", "auth_token": ""},
                "drs_object_info": [
                    {"drs_id": i, "auth_type": kind, "auth_token": tok, "is_bundle": b}
                    for i, b in objs
                ],
                "drs_object_access": [
                    {"drs_id": i, "auth_type": kind, "auth_token": tok} for i, b in objs if not b
                ],
            }
            cfg, report = work / f"config_{kind}.json", work / f"report_{kind}.json"
            cfg.write_text(json.dumps(config))
            run = subprocess.run(
                [
                    args.suite_python,
                    "compliance_suite/report_runner.py",
                    "--server_base_url",
                    base,
                    "--platform_name",
                    "genomeport",
                    "--platform_description",
                    "genomeport DRS 1.5",
                    "--drs_version",
                    "1.2.0",
                    "--config_file",
                    str(cfg),
                    "--report_path",
                    str(report),
                ],
                cwd=args.suite,
                env={"PYTHONPATH": args.suite, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=600,
            )
            if run.returncode or not report.exists():
                print(
                    f"compliance suite, auth {kind}: the suite failed (exit {run.returncode}):",
                    run.stderr[-2000:],
                )
                return 1
            result = json.loads(report.read_text())
            print(f"compliance suite, auth {kind}: {json.dumps(result['summary'])}")
            for phase in result["phases"]:
                for test in phase["tests"]:
                    for case in test["cases"]:
                        if case["status"] in ("PASS", "SKIP"):
                            continue
                        message = case.get("message", "")
                        if (
                            case["case_name"] == "Service Info response schema validation"
                            and message == KNOWN_SERVICE_INFO
                        ):
                            print(
                                f"  KNOWN {case['case_name']}: the suite's schema (DRS 1.2) "
                                "forbids the drs block DRS 1.5 requires"
                            )
                            continue
                        failures += 1
                        print(f"  FAIL {case['case_name']}: {message[:200]}")
        out = subprocess.run(
            [
                args.drs_cli_python,
                "-c",
                DRS_CLI_SCRIPT,
                server.url,
                token,
                json.dumps(["spec.vcf.gz", "spec.vcf.gz.tbi", "hg.bam", "hg.bam.bai"]),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode:
            print("drs-cli failed:", out.stderr[-2000:])
            return 1
        for drs_id, checks in json.loads(out.stdout.strip().splitlines()[-1]).items():
            ok = checks["size_ok"] and checks["sha_ok"]
            failures += not ok
            print(
                f"drs-cli {drs_id}: {'ok' if ok else 'FAIL'} (bytes match size and sha-256; "
                f"self_uri {checks['self_uri']})"
            )
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
