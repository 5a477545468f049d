"""The README's benchmark figures at two revisions, measured in one run.

A change that should not cost speed (a refactoring, a dependency bump) is
checked by measuring the figures the README quotes at the revision before it
and at the revision after it, on the same machine at the same time: one
throwaway ``git worktree`` per revision (under ``var/bench-compare/``, removed
afterwards; the working tree itself when ``--head`` is not given), and each
benchmark run alternately at one revision and the other (base, head, head,
base, ...), so both see the same load. Every revision runs its own
``bench/*.py`` against its own code (``PYTHONPATH`` is its checkout) with this
checkout's ``.venv``, so the head's dependencies must be a superset of the
base's.

Latency figures are taken as the ratios the benchmarks print beside them (a
ticket against ``GET /service-info`` of the same server, a WES run against
cwltool), so a slower moment of the machine cancels out; rates are ratios to
the same bytes read by other means. A few figures have no in-run reference
that stayed the same across the revisions (Beacon queries, whose ``/info``
reference changed cost, in-process times, the WES submit times, runs per
minute) and are compared as they are.

Every round runs the two revisions back to back, so each round gives its own
head / base ratio of every figure (the base run of the same round is the
same-run reference); the table gives each figure at both revisions (the
median over the rounds), the median of the per-round ratios, the range of
those ratios, and whether the median is within 10% (0.90 to 1.10); outside
it, the direction says whether the head is better or worse, knowing for each
figure whether lower or higher is better. A figure outside the band is
judged worse (or better) only when the middle half of its per-round ratios
(all of them, under four rounds) lies outside the band on that side;
otherwise it is "inconclusive": the rounds disagree, and more rounds or a
quieter machine decide it. The exit status is 0 only if every figure is
within 10% or better.

The Beacon query rows are the noisiest (a few milliseconds each, on a shared
machine), so they get more rounds than the rest: ``--beacon-rounds`` rounds
in all, the first ``--rounds`` of them full runs of ``bench/beacon.py`` and
the others with ``--skip-ingest`` (the query shapes only; the ingest ratio is
steady and slow to measure).

The benchmarks run smaller than their defaults so the whole comparison fits
in about 30 minutes on a shared 2-core machine (``BENCHES`` lists the
parameters; the Beacon store is 200,000 variants, not 10 million).

    python bench/compare.py [--base 8d1381f] [--head REV] [--rounds 2]
                            [--beacon-rounds 8] [--only beacon,htsget,wes,wes_submit]
                            [--readme]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench-compare"
START, END = "<!-- bench-compare:start -->", "<!-- bench-compare:end -->"
DEFAULT_BASE = "8d1381f"
LOW, HIGH = "lower", "higher"  # which way is better

Figure = tuple[str, float, str]  # name, value, better


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _find(pattern: str, text: str) -> re.Match | None:
    return re.search(pattern, text, re.MULTILINE)


def parse_beacon(out: str) -> list[Figure]:
    figures = []
    p50: dict[tuple[str, str], float] = {}
    for m in re.finditer(
        r"^(sqlite|postgresql)\s+(trivial \(/info\)|allele query|1 Mb range|"
        r"phenotype-filtered carriers)\s+([\d.]+)\s+([\d.]+)",
        out,
        re.MULTILINE,
    ):
        p50[m[1], m[2]] = float(m[3])
    for db in ("sqlite", "postgresql"):
        # Absolute p50s, not ratios to /info: /info itself changed cost across
        # the web-layer change (8d1381f answers it in about 12 ms, later
        # revisions in under 2), so it is no common reference; the alternating
        # rounds give both revisions the same load instead.
        for shape in (
            "trivial (/info)",
            "allele query",
            "1 Mb range",
            "phenotype-filtered carriers",
        ):
            if (db, shape) in p50:
                figures.append((f"Beacon {db}: {shape} p50 ms", p50[db, shape], LOW))
        m = _find(rf"^{db}\s+ingest \(records/s\).*load/parse ([\d.]+)", out)
        if m:
            figures.append((f"Beacon {db}: ingest rate, load / pysam parse", float(m[1]), HIGH))
    return figures


def parse_htsget(out: str) -> list[Figure]:
    patterns = [
        (r"ticket / trivial\s+p50 x([\d.]+)", "htsget: warm ticket p50 / `/service-info` p50", LOW),
        (
            r"ticket logic alone p50\s+([\d.]+) ms",
            "htsget: ticket logic alone, p50 ms (in-process)",
            LOW,
        ),
        (
            r"4 KiB range / trivial p50 x([\d.]+)",
            "htsget: 4 KiB data range p50 / `/service-info` p50",
            LOW,
        ),
        (
            r"in-process 4 KiB range: .*: x([\d.]+)",
            "htsget: in-process 4 KiB range, audited / not",
            LOW,
        ),
        (
            r"audit row alone\s+p50\s+([\d.]+) ms",
            "htsget: audit insert alone, p50 ms (in-process)",
            LOW,
        ),
        (r"data plane / disk\s+x([\d.]+)", "htsget: data plane / `os.pread`, from disk", HIGH),
        (r"data plane / cache\s+x([\d.]+)", "htsget: data plane / `os.pread`, page cache", HIGH),
        (r"data plane / Flask\s+x([\d.]+)", "htsget: data plane / Flask route", HIGH),
        (r"data plane / bare\s+x([\d.]+)", "htsget: data plane / bare `sendfile` socket", HIGH),
        (
            r"1 Mbp slice with pysam: .*: x([\d.]+)",
            "htsget: 1 Mbp slice with pysam, htsget / local",
            LOW,
        ),
    ]
    figures = [
        (name, float(m[1]), better) for pat, name, better in patterns if (m := _find(pat, out))
    ]
    m = _find(r"cold ticket (\d+) ms .*warm p50 ([\d.]+)", out)
    if m:
        figures.insert(
            2, ("htsget: cold ticket on a WGS-scale BAI / warm", float(m[1]) / float(m[2]), LOW)
        )
    return figures


def parse_wes(out: str) -> list[Figure]:
    patterns = [
        (
            r"through this node\s+[\d.]+ s\s+([\d.]+)x",
            "WES: run through the node (sandboxed) / cwltool",
            LOW,
        ),
        (
            r"node, sandbox off\s+[\d.]+ s\s+([\d.]+)x",
            "WES: run through the node (sandbox off) / cwltool",
            LOW,
        ),
        (
            r"wes-service reference\s+[\d.]+ s\s+([\d.]+)x",
            "WES: wes-service reference / cwltool",
            LOW,
        ),
        (r"([\d.]+) runs/min", "WES: concurrent submissions, runs per minute", HIGH),
    ]
    return [(name, float(m[1]), better) for pat, name, better in patterns if (m := _find(pat, out))]


def parse_wes_submit(out: str) -> list[Figure]:
    figures = []
    for m in re.finditer(
        r"^\| ([^|]+?) \| (\d+) \| (\d+) \| [^|]+ \| ([\d.]+)x \|", out, re.MULTILINE
    ):
        name = m[1].split(" (")[0]
        figures.append((f"WES submit {name}: with graph check, ms", float(m[2]), LOW))
        figures.append((f"WES submit {name}: without, ms", float(m[3]), LOW))
    return figures


@dataclass(frozen=True)
class Bench:
    name: str
    argv: tuple[str, ...]  # bench/<script> and its arguments, relative to a checkout
    parse: Callable[[str], list[Figure]]
    note: str
    # arguments added for the rounds past --rounds (--beacon-rounds), which measure
    # the noisy rows only; None: this benchmark runs --rounds rounds
    extra: tuple[str, ...] | None = None


BENCHES = (
    Bench(
        "beacon",
        ("bench/beacon.py", "--variants", "200000", "--queries", "100"),
        parse_beacon,
        "200,000 variants over 2,500 individuals, 100 requests per shape, ingest as in the README;"
        " the rounds past --rounds with --skip-ingest",
        extra=("--skip-ingest",),
    ),
    Bench(
        "htsget",
        ("bench/htsget.py", "--range-mb", "128", "--requests", "200"),
        parse_htsget,
        "128 MiB range, 200 requests per measurement",
    ),
    Bench(
        "wes",
        ("bench/wes.py", "--repeat", "3", "--concurrent", "8"),
        parse_wes,
        "medians of 3 runs, 8 concurrent submissions",
    ),
    Bench(
        "wes_submit", ("bench/wes_submit.py", "--repeat", "10"), parse_wes_submit, "medians of 10"
    ),
)


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class Checkout:
    label: str  # as given
    commit: str  # short hash, or "working tree"
    path: Path
    throwaway: bool


def checkout(rev: str | None) -> Checkout:
    """A checkout of ``rev`` under var/bench-compare/, or the working tree for None."""
    if rev is None:
        return Checkout(
            "working tree", f"working tree at {git('rev-parse', '--short', 'HEAD')}", REPO, False
        )
    commit = git("rev-parse", "--short", f"{rev}^{{commit}}")
    path = WORK / commit
    if path.exists():
        git("worktree", "remove", "--force", str(path))
    git("worktree", "add", "--detach", str(path), commit)
    # What the benchmarks reach outside the code: the venv (cwltool), the client
    # venvs (wes-service) and the test data beside the checkout.
    (path / ".venv").symlink_to(REPO / ".venv")
    (path / "var").mkdir(exist_ok=True)
    venvs = REPO / "var" / "venvs"
    if venvs.exists() and not (path / "var" / "venvs").exists():
        (path / "var" / "venvs").symlink_to(venvs.resolve())
    shared = WORK / "shared"
    if not shared.exists() and (REPO.parent / "shared").exists():
        shared.symlink_to((REPO.parent / "shared").resolve())
    return Checkout(rev, commit, path, True)


def env_for(co: Checkout) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(co.path)
    return env


def check_imports(co: Checkout) -> None:
    """Fail unless the checkout's own ``server`` package is the one imported."""
    found = subprocess.run(
        [sys.executable, "-c", "import server; print(server.__file__)"],
        cwd=co.path,
        env=env_for(co),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(co.path.resolve()):
        raise SystemExit(f"{co.label}: imports server from {found}, not from {co.path}")


def run(
    bench: Bench, co: Checkout, log_dir: Path, round_: int, extra: tuple[str, ...] = ()
) -> tuple[list[Figure], float]:
    script = co.path / bench.argv[0]
    if not script.exists():
        print(f"  {bench.name} @ {co.commit}: no {bench.argv[0]} at this revision", flush=True)
        return [], 0.0
    t = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script), *bench.argv[1:], *extra],
        cwd=co.path,
        env=env_for(co),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    took = time.monotonic() - t
    log = log_dir / f"{bench.name}-{co.commit.split()[-1]}-{round_}.log"
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    figures = bench.parse(proc.stdout)
    status = "" if proc.returncode == 0 else f", exit {proc.returncode} (see {log})"
    print(
        f"  {bench.name} @ {co.commit}: {len(figures)} figures in {took:.0f} s{status}", flush=True
    )
    return figures, took


def spread(values: list[float]) -> float:
    """How far apart the rounds of one revision are: largest / smallest (1.0 for one round)."""
    return max(values) / min(values) if min(values) > 0 else float("inf")


def _middle_half(ratios: list[float]) -> tuple[float, float]:
    """The lower and upper quartile of ``ratios`` (their whole range under four)."""
    values = sorted(ratios)
    if len(values) < 4:
        return values[0], values[-1]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def verdict(
    ratio: float, better: str, noise: float = 1.0, rounds: list[float] | None = None
) -> str:
    """Within 10%, or which way the head is off.

    ``rounds`` (the per-round head / base ratios): outside the band is decided
    only when their middle half lies outside it on the same side as ``ratio``,
    else ``inconclusive``. Without them, ``noise`` (the rounds spread of one
    revision) makes a difference smaller than itself ``inconclusive``."""
    if 0.90 <= ratio <= 1.10:
        return "within 10%"
    if rounds:
        lo, hi = _middle_half(rounds)
        if (ratio > 1.10 and lo <= 1.10) or (ratio < 0.90 and hi >= 0.90):
            return f"inconclusive: per-round ratios {min(rounds):.2f} to {max(rounds):.2f}"
    elif 1 / noise <= ratio <= noise:
        return f"inconclusive: rounds of one revision differ by {noise - 1:.0%}"
    improved = ratio < 0.90 if better == LOW else ratio > 1.10
    return "outside: head better" if improved else "OUTSIDE: head worse"


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}" if value < 1 else f"{value:.2f}"


Results = dict[str, dict[str, dict[int, float]]]  # side -> figure -> round -> value


def per_round_ratios(results: Results, name: str) -> list[float]:
    """head / base of ``name`` in every round that measured it at both revisions."""
    b, h = results["base"].get(name, {}), results["head"].get(name, {})
    return [h[r] / b[r] for r in sorted(b.keys() & h.keys()) if b[r] > 0]


def table(results: Results, names: list[tuple[str, str]]) -> list[str]:
    lines = [
        "| figure (better) | base | head | head / base | per-round ratios | rounds | "
        "rounds spread | 0.90-1.10 |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, better in names:
        b = list(results["base"].get(name, {}).values())
        h = list(results["head"].get(name, {}).values())
        mb = statistics.median(b) if b else None
        mh = statistics.median(h) if h else None
        ratios = per_round_ratios(results, name)
        if mb and mh and ratios:
            ratio, noise = statistics.median(ratios), max(spread(b), spread(h))
            judged = verdict(ratio, better, noise, ratios)
            cells = (
                f"{fmt(mb)} | {fmt(mh)} | {ratio:.2f} | {min(ratios):.2f}-{max(ratios):.2f} | "
                f"{len(ratios)} | {noise:.2f} | {judged}"
            )
            lines.append(f"| {name} ({better}) | {cells} |")
        else:
            lines.append(
                f"| {name} ({better}) | {fmt(mb)} | {fmt(mh)} | | | | | not measured at both |"
            )
    return lines


def write_readme(block: list[str], start: str = START, end: str = END) -> None:
    """Replace what README.md holds between the markers ``start`` and ``end``."""
    readme = REPO / "README.md"
    text = readme.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} block to replace")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(block) + "\n" + end + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help=f"revision before the change (default {DEFAULT_BASE})"
    )
    parser.add_argument(
        "--head", default=None, help="revision after the change (default: the working tree)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each benchmark per revision")
    parser.add_argument(
        "--beacon-rounds",
        type=int,
        default=8,
        help="rounds of the Beacon query rows in all (at least --rounds; the rounds past "
        "--rounds run bench/beacon.py with --skip-ingest)",
    )
    parser.add_argument(
        "--only", default=",".join(b.name for b in BENCHES), help="benchmarks to run"
    )
    parser.add_argument(
        "--readme", action="store_true", help=f"write the table into README.md at {START}"
    )
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    unknown = wanted - {b.name for b in BENCHES}
    if unknown:
        raise SystemExit(
            f"unknown benchmarks {sorted(unknown)}; known: {', '.join(b.name for b in BENCHES)}"
        )
    if os.nice(0) < 10:
        os.nice(10 - os.nice(0))  # other work shares the machine

    WORK.mkdir(parents=True, exist_ok=True)
    log_dir = WORK / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    revs = {}
    try:
        revs["base"] = checkout(args.base)
        revs["head"] = checkout(args.head)
        for co in revs.values():
            check_imports(co)
            # bytecode written now, not during the first measured run of a fresh checkout
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", "server", "handlers", "bench", "tests"],
                cwd=co.path,
                capture_output=True,
            )
        load_start = os.getloadavg()
        started = time.monotonic()
        results: Results = {"base": {}, "head": {}}
        names: list[tuple[str, str]] = []
        for bench in BENCHES:
            if bench.name not in wanted:
                continue
            rounds = args.rounds if bench.extra is None else max(args.rounds, args.beacon_rounds)
            for r in range(rounds):
                extra = bench.extra if r >= args.rounds else ()
                for side in ("base", "head") if r % 2 == 0 else ("head", "base"):
                    figures, _ = run(bench, revs[side], log_dir, r, extra or ())
                    for name, value, better in figures:
                        results[side].setdefault(name, {})[r] = value
                        if (name, better) not in names:
                            names.append((name, better))
        minutes = (time.monotonic() - started) / 60
        load_end = os.getloadavg()
    finally:
        for co in revs.values():
            if co.throwaway:
                git("worktree", "remove", "--force", str(co.path))
        shared = WORK / "shared"
        if shared.is_symlink():
            shared.unlink()

    block = [
        f"base `{revs['base'].commit}` ({revs['base'].label}), head `{revs['head'].commit}` "
        f"({revs['head'].label}); rounds per benchmark and revision: {args.rounds}"
        + (
            f" ({args.beacon_rounds} for the Beacon query rows)"
            if "beacon" in wanted and args.beacon_rounds > args.rounds
            else ""
        )
        + ", alternating (base, head, head, base, ...), medians over the rounds, head / base "
        f"the median of the per-round ratios; {minutes:.0f} min; "
        f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end.",
        "Parameters: "
        + "; ".join(f"`{' '.join(b.argv)}` ({b.note})" for b in BENCHES if b.name in wanted)
        + ".",
        "",
        *table(results, names),
    ]
    print()
    print("\n".join(block))
    if args.readme:
        write_readme(block)
        print(f"\nwritten into README.md at {START}")
    bad = [line for line in block if re.search("OUTSIDE|inconclusive|not measured", line)]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
