#!/usr/bin/env python
"""WES benchmark: what the node adds on top of the workflow engine.

Prints, in one run on this machine (ratios and differences side by side, never
asserted anywhere):

1. submit -> COMPLETE of a trivial two-step CWL workflow
   a. cwltool run directly (the engine's own time),
   b. through this node (gunicorn + one `genomeport worker`, SQLite), every run
      in the sandbox (bubblewrap as genomeport-run, the default),
   c. through a second node with the sandbox off (GENOMEPORT_WES_SANDBOX=none),
      to show what the sandbox itself costs,
   d. through the wes-service reference server (same cwltool),
   interleaved, as medians of --repeat runs, and the overhead over cwltool;
2. --concurrent (default 20) submissions at once through the node: all must
   complete, none lost; wall time and runs per minute.

Usage: .venv/bin/python bench/wes.py [--repeat 5] [--concurrent 20]
(the wes-service column needs scripts/client-venvs.sh wes-service).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.support.processes import (  # noqa: E402
    clean_env,
    free_port,
    spawn,
    stop,
    stop_all,
    wait_ready,
)
from tests.support.wes import attachments, run_form  # noqa: E402
from tests.unit.wes.conftest import TWO_STEP  # noqa: E402

DONE = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}
PARAMS = {"msg": "hello"}


def submit(client: httpx.Client, base: str, msg: str = "hello") -> str:
    resp = client.post(
        f"{base}/runs",
        data=run_form("two.cwl", {"msg": msg}),
        files=attachments(("two.cwl", TWO_STEP)),
    )
    resp.raise_for_status()
    return resp.json()["run_id"]


def wait(client: httpx.Client, base: str, run_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = client.get(f"{base}/runs/{run_id}/status").json()["state"]
        except httpx.TransportError:  # a busy dev server may drop a poll; poll again
            time.sleep(0.1)
            continue
        if state in DONE:
            return state
        time.sleep(0.05)
    return "TIMEOUT"


def through(client: httpx.Client, base: str) -> float:
    start = time.perf_counter()
    state = wait(client, base, submit(client, base))
    if state != "COMPLETE":
        raise RuntimeError(f"run ended {state}")
    return time.perf_counter() - start


def direct(work: Path) -> float:
    wf, job = work / "two.cwl", work / "job.json"
    wf.write_text(TWO_STEP)
    job.write_text(json.dumps(PARAMS))
    out = Path(tempfile.mkdtemp(dir=work))
    start = time.perf_counter()
    subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "cwltool"),
            "--quiet",
            "--no-container",
            "--outdir",
            str(out),
            str(wf),
            str(job),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def node(work: Path, sandbox: str = "bwrap"):
    work = work / f"node-{sandbox}"
    work.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env()
    env.update(
        GENOMEPORT_VAR_DIR=str(work / "var"),
        GENOMEPORT_PUBLIC_URL=url,
        GENOMEPORT_PORT=str(port),
        GENOMEPORT_WORKERS="2",
        GENOMEPORT_LOG_LEVEL="WARNING",
        GENOMEPORT_WES_POLL_MS="50",
        GENOMEPORT_WES_WORKER_SLOTS="4",
        GENOMEPORT_WES_CONTAINER="none",
        GENOMEPORT_WES_SANDBOX=sandbox,
    )
    log = work / "node.log"
    api = spawn([sys.executable, "-m", "server.cli", "serve"], log, env=env, cwd=REPO)
    try:
        wait_ready(url + "/health/ready", api, log, request_timeout=15)
    except BaseException:
        stop(api)
        raise
    worker = spawn(
        [sys.executable, "-m", "server.cli", "worker"], log, env=env, cwd=REPO, append=True
    )
    return url + "/ga4gh/wes/v1", [api, worker]


def reference(work: Path):
    server = REPO / "var" / "venvs" / "wes-service" / "bin" / "wes-server"
    if not server.exists():
        return None, []
    port = free_port()
    cwd = work / "wes-service"
    cwd.mkdir()
    proc = spawn(
        [
            str(server),
            f"--port={port}",
            "--opt",
            f"runner={REPO / '.venv' / 'bin' / 'cwltool'}",
            "--opt",
            "extra=--no-container",
        ],
        work / "ref.log",
        cwd=cwd,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/ga4gh/wes/v1/service-info", proc, work / "ref.log", request_timeout=15)
    except BaseException:
        stop(proc)
        raise
    return url + "/ga4gh/wes/v1", [proc]


def exit_on_sigterm() -> None:
    """SIGTERM unwinds through ``finally`` so the servers started here stop too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main() -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--concurrent", type=int, default=20)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wes-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        base, started = node(work)
        procs += started
        off_base, started = node(work, "none")
        procs += started
        ref_base, started = reference(work)
        procs += started
        times: dict[str, list[float]] = {"direct": [], "node": [], "off": [], "ref": []}
        with httpx.Client(timeout=60) as client:
            direct(work), through(client, base), through(client, off_base)  # warm-up
            if ref_base:
                through(client, ref_base)
            for _ in range(args.repeat):  # interleaved, so all share the machine's load
                times["direct"].append(direct(work))
                times["node"].append(through(client, base))
                times["off"].append(through(client, off_base))
                if ref_base:
                    times["ref"].append(through(client, ref_base))
            t_direct = statistics.median(times["direct"])
            t_node = statistics.median(times["node"])
            t_off = statistics.median(times["off"])
            t_ref = statistics.median(times["ref"]) if ref_base else None

            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrent) as pool:
                ids = list(
                    pool.map(lambda i: submit(client, base, f"m{i}"), range(args.concurrent))
                )
                states = list(pool.map(lambda rid: wait(client, base, rid), ids))
            t_conc = time.perf_counter() - start
        complete = states.count("COMPLETE")
        lost = args.concurrent - len(set(ids))
        print(f"trivial two-step workflow, median of {args.repeat} (submit -> COMPLETE):")
        print(f"  cwltool directly        {t_direct:6.2f} s   1.00x")
        print(
            f"  through this node       {t_node:6.2f} s   {t_node / t_direct:.2f}x   "
            f"(overhead {t_node - t_direct:+.2f} s per run; sandboxed)"
        )
        print(
            f"  node, sandbox off       {t_off:6.2f} s   {t_off / t_direct:.2f}x   "
            f"(overhead {t_off - t_direct:+.2f} s per run; the sandbox costs "
            f"{t_node - t_off:+.2f} s)"
        )
        verdict = "met" if t_node - t_direct <= 0.5 else "NOT met"
        print(f"  target: sandboxed node within cwltool + 0.5 s per run: {verdict}")
        if t_ref is not None:
            print(
                f"  wes-service reference   {t_ref:6.2f} s   {t_ref / t_direct:.2f}x   "
                f"(overhead {t_ref - t_direct:+.2f} s per run)"
            )
        else:
            print("  wes-service reference   (not installed: scripts/client-venvs.sh wes-service)")
        with open("/proc/loadavg") as fh:
            print("load average after the runs:", " ".join(fh.read().split()[:3]))
        print(
            f"{args.concurrent} concurrent submissions (sandboxed node): {complete} COMPLETE, "
            f"{args.concurrent - complete} not, {lost} lost; {t_conc:.1f} s wall, "
            f"{60 * complete / t_conc:.1f} runs/min (one worker, 4 slots, 2 cores)"
        )
        return 0 if complete == args.concurrent and lost == 0 else 1
    finally:
        stop_all(procs, remove=work)


if __name__ == "__main__":
    raise SystemExit(main())
