"""What each acceleration saves on its own path, measured with and without it in one run.

The node's accelerations (``server/web/accel/``) replace a dependency's own
code path with a faster one. Each is worth its upkeep only if it saves a real
share of its path's cost, so this starts, on the same generated BAM, one node
with every acceleration on, one with each switched off alone, and one with
all off (``GENOMEPORT_ACCEL``), then measures, interleaved over the nodes so
all share the machine's load:

* a warm htsget ticket (``GET /reads/{id}`` for a random 10 kbp region), one
  keep-alive ``http.client`` connection per node: the path of an acceleration
  of the request path (none is left: a WSGI bridge, a lean invocation and
  compiled validators each removed under 20% of it, and went; the tickets
  also feed the data-plane rows their URLs);
* one large ``Range`` of the same file through the data plane with curl, from
  the page cache and straight from disk: the path of zero-copy sends.

For each acceleration, gain = 1 - with / without (of the p50 latency, or of
the time per byte): the share of its path's cost it removes. A gain under 20%
is flagged: such an acceleration does not pay for the dependency internals it
touches. Only the ratios mean anything; the machine is shared.

    python bench/accel.py [--requests 1000] [--range-mb 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.compare import write_readme  # noqa: E402
from bench.htsget import (  # noqa: E402
    CONTIG_LEN,
    KeepAliveClient,
    curl_rate,
    evict,
    free_port,
    make_bam,
    node_env,
    stop,
    wait_ready,
)
from server.web.accel import NAMES as ACCELERATIONS  # noqa: E402

TICKET_PATH = tuple(name for name in ACCELERATIONS if name != "zerocopy")
THRESHOLD = 0.20
START, END = "<!-- accel-bench:start -->", "<!-- accel-bench:end -->"

# node name -> accelerations switched off
NODES = {
    "all on": (),
    **{f"{name} off": (name,) for name in ACCELERATIONS},
    **({"all off": ACCELERATIONS} if len(ACCELERATIONS) > 1 else {}),
}


def start_node(tmp: Path, name: str, off: tuple[str, ...], db_file: Path) -> tuple[str, object]:
    var = tmp / name.replace(" ", "-")
    var.mkdir()
    shutil.copy(db_file, var / "genomeport.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = node_env(var, port)
    env.update(
        GENOMEPORT_ACCEL=",".join(a for a in ACCELERATIONS if a not in off) or "none",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    with open(var / "node.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--worker-class",
                "server.web.worker.Worker",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "server.web.app:asgi_from_env()",
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_ready(base + "/health/ready", proc, var / "node.log")
    return base, proc


def worker_cpu(master_pid: int) -> float:
    """CPU seconds (user + system) used so far by the gunicorn master's workers."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def gain(with_: float, without: float) -> float:
    return 1 - with_ / without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="tickets per node")
    parser.add_argument("--range-mb", type=int, default=128, help="size of the data-plane range")
    parser.add_argument("--rounds", type=int, default=5, help="large ranges per node and source")
    parser.add_argument(
        "--readme", action="store_true", help=f"write the table into README.md at {START}"
    )
    args = parser.parse_args()

    import json
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from server.db import Database
    from server.registry import add_dataset, add_files

    tmp = Path(tempfile.mkdtemp(prefix="bench-accel-"))
    procs = []
    try:
        length = args.range_mb << 20
        print(f"generating data in {tmp} ...", flush=True)
        bam = tmp / "bench.bam"
        make_bam(bam, length + (16 << 20))
        db_file = tmp / "genomeport.db"
        db = Database(f"sqlite:///{db_file}")
        db.upgrade()
        add_dataset(db, "bench", access="public")
        add_files(db, [bam], "bench", object_id="bench", progress=False)
        db.dispose()

        bases, pids = {}, {}
        for name, off in NODES.items():
            base, proc = start_node(tmp, name, off, db_file)
            procs.append(proc)
            bases[name], pids[name] = base, proc.pid
        clients = {name: KeepAliveClient(base) for name, base in bases.items()}
        start_load = os.getloadavg()[0]
        try:
            rng = random.Random(1)
            tickets: dict[str, list[float]] = {name: [] for name in NODES}
            ticket_cpu: dict[str, float] = {}
            for i in range(args.requests + 10):
                if i == 10:  # warm-up done: worker CPU from here on
                    ticket_cpu = {name: worker_cpu(pids[name]) for name in NODES}
                start = rng.randrange(CONTIG_LEN - 100_000)
                params = {"referenceName": "chr1", "start": start, "end": start + 10_000}
                order = list(NODES)
                rng.shuffle(order)  # no node always goes first
                for name in order:
                    t = time.perf_counter()
                    status, body = clients[name].get(f"{bases[name]}/reads/bench", params=params)
                    elapsed = time.perf_counter() - t
                    assert status == 200, body[:300]
                    if i >= 10:
                        tickets[name].append(elapsed)
            ticket_cpu = {
                name: (worker_cpu(pids[name]) - ticket_cpu[name]) / args.requests for name in NODES
            }
            urls = {}
            for name in ("all on", "zerocopy off"):
                ticket = json.loads(clients[name].get(f"{bases[name]}/reads/bench")[1])
                urls[name] = next(
                    u["url"] for u in ticket["htsget"]["urls"] if u["url"].startswith("http")
                )
        finally:
            for client in clients.values():
                client.close()

        offset = 1 << 20
        cached: dict[str, list[float]] = {name: [] for name in urls}
        disk: dict[str, list[float]] = {name: [] for name in urls}
        cpu: dict[str, list[float]] = {name: [] for name in urls}  # worker CPU s per range
        curl_rate(urls["all on"], offset, length)  # page cache warm
        for r in range(args.rounds):
            for name in urls if r % 2 == 0 else reversed(urls):
                before = worker_cpu(pids[name])
                cached[name].append(curl_rate(urls[name], offset, length))
                cpu[name].append(worker_cpu(pids[name]) - before)
        for r in range(args.rounds):
            for name in urls if r % 2 == 0 else reversed(urls):
                evict(bam)
                disk[name].append(curl_rate(urls[name], offset, length))
        end_load = os.getloadavg()[0]
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    ms = 1000
    p50 = {name: statistics.median(v) * ms for name, v in tickets.items()}
    cpu_ms = {name: v * ms for name, v in ticket_cpu.items()}
    rows = []
    together = (("together", "all off"),) if len(TICKET_PATH) > 1 else ()
    for label, off in (*((name, name + " off") for name in TICKET_PATH), *together):
        rows.append(
            (
                f"{label} (latency)",
                f"ticket p50 {p50['all on']:.2f} ms with, {p50[off]:.2f} ms without",
                gain(p50["all on"], p50[off]),
            )
        )
        rows.append(
            (
                f"{label} (worker CPU)",
                f"worker CPU per ticket {cpu_ms['all on']:.2f} ms with, "
                f"{cpu_ms[off]:.2f} ms without",
                gain(cpu_ms["all on"], cpu_ms[off]),
            )
        )
    mib = 2**20
    for source, rates in (("page cache", cached), ("disk", disk)):
        on, off = statistics.median(rates["all on"]), statistics.median(rates["zerocopy off"])
        rows.append(
            (
                f"zerocopy (rate, {source})",
                f"{args.range_mb} MiB range {on / mib:,.0f} MiB/s with, "
                f"{off / mib:,.0f} MiB/s without",
                gain(1 / on, 1 / off),  # time per byte
            )
        )
    on, off = statistics.median(cpu["all on"]), statistics.median(cpu["zerocopy off"])
    rows.append(
        (
            "zerocopy (worker CPU)",
            f"worker CPU per {args.range_mb} MiB range from the page cache: "
            f"{on * ms:.0f} ms with, {off * ms:.0f} ms without",
            gain(on, off),
        )
    )
    block = [
        f"One run: {args.requests} tickets per node (interleaved, p50), {args.rounds} rounds of "
        f"one {args.range_mb} MiB range per source; load average {start_load:.1f} at the start "
        f"of the measurements, {end_load:.1f} at the end. Gain = 1 - with / without.",
        "",
        "| acceleration (cost measured) | gain | verdict | measurement |",
        "|---|---:|---|---|",
    ]
    for name, what, g in rows:
        verdict = "keep" if g >= THRESHOLD else f"under {THRESHOLD:.0%}"
        if name.startswith("together"):
            verdict = "(together)"
        block.append(f"| {name} | {g:.1%} | {verdict} | {what} |")
    print()
    print("\n".join(block))
    if args.readme:
        write_readme(block, START, END)
        print(f"\nwritten into README.md at {START}")


if __name__ == "__main__":
    main()
