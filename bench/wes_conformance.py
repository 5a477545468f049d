#!/usr/bin/env python
"""CWL v1.2 conformance through WES: this node against the wes-service reference.

Runs the first --count (default 40) tests of a local checkout of
github.com/common-workflow-language/cwl-v1.2 with ``cwltest``, the tool being
``toil-wes-cwl-runner`` pointed at (a) this node (gunicorn + one
`genomeport worker`, SQLite) and (b) the wes-service reference server, both
running cwltool with --no-container, and prints both pass counts.

Usage: .venv/bin/python bench/wes_conformance.py /path/to/cwl-v1.2 [--count 40] [-j 2]
Needs scripts/client-venvs.sh (toil with cwltest, wes-service). Not run by CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.wes import exit_on_sigterm, node, reference  # noqa: E402
from tests.support.processes import stop_all  # noqa: E402

TOIL = REPO / "var" / "venvs" / "toil" / "bin"


def cwltest(tests: Path, endpoint: str, count: int, jobs: int, log: Path) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOIL_")}
    env["PATH"] = f"{TOIL}{os.pathsep}{env['PATH']}"
    cmd = [
        str(TOIL / "cwltest"),
        "--test",
        str(tests / "conformance_tests.yaml"),
        "--tool",
        str(TOIL / "toil-wes-cwl-runner"),
        "-n",
        f"1-{count}",
        "-j",
        str(jobs),
        "--timeout",
        "300",
        "--",
        f"--wes_endpoint={endpoint}",
        "--no-container",
    ]
    done = subprocess.run(cmd, cwd=tests, env=env, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    text = done.stdout + done.stderr
    passed = re.search(r"(\d+) tests passed", text)
    failed = re.search(r"(\d+) failures", text)
    unsupported = re.search(r"(\d+) tests? (?:had )?unsupported", text)
    n_pass = int(passed.group(1)) if passed else (count if "All tests passed" in text else 0)
    n_fail = int(failed.group(1)) if failed else 0
    if unsupported:
        n_fail += int(unsupported.group(1))
    return n_pass, n_fail


def main() -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tests", type=Path, help="checkout of common-workflow-language/cwl-v1.2")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args()
    if not (TOIL / "cwltest").exists():
        subprocess.run([str(TOIL / "pip"), "install", "-q", "cwltest"], check=True)
    work = Path(tempfile.mkdtemp(prefix="wes-conformance-"))
    procs: list[subprocess.Popen] = []
    try:
        base, started = node(work)
        procs += started
        ref_base, started = reference(work)
        procs += started
        results = {
            "this node": cwltest(
                args.tests,
                base.removesuffix("/ga4gh/wes/v1"),
                args.count,
                args.jobs,
                work / "node-cwltest.log",
            )
        }
        if ref_base:
            results["wes-service reference"] = cwltest(
                args.tests,
                ref_base.removesuffix("/ga4gh/wes/v1"),
                args.count,
                args.jobs,
                work / "ref-cwltest.log",
            )
        print(f"CWL v1.2 conformance, tests 1-{args.count}, toil-wes-cwl-runner --no-container:")
        for name, (ok, bad) in results.items():
            print(f"  {name:24s} {ok:3d} passed  {bad:3d} failed")
        keep = REPO / "var" / "bench"
        keep.mkdir(parents=True, exist_ok=True)
        for log in work.glob("*-cwltest.log"):
            shutil.copy(log, keep / log.name)
        print(f"  (cwltest logs in {keep})")
        return 0
    finally:
        stop_all(procs, remove=work)


if __name__ == "__main__":
    raise SystemExit(main())
