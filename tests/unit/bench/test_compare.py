"""bench/compare.py reads the figures the README quotes, and judges them the right way round."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from bench import compare  # noqa: E402

README = (REPO / "README.md").read_text()


def test_beacon_figures_from_the_readme_block():
    block = README.split("<!-- beacon-bench:start -->")[1].split("<!-- beacon-bench:end -->")[0]
    figures = {name: (value, better) for name, value, better in compare.parse_beacon(block)}
    assert len(figures) == 10  # /info, three query shapes and the ingest ratio, per database
    value, better = figures["Beacon sqlite: allele query p50 ms"]
    assert value == 5.61 and better == compare.LOW
    assert figures["Beacon postgresql: ingest rate, load / pysam parse"] == (0.60, compare.HIGH)


HTSGET_OUTPUT = """
  ticket / trivial   p50 x1.61
  ticket logic alone p50    0.82 ms  p99    1.95 ms   (in-process: lookup, slice, sign; no HTTP)
  WGS-scale BAI (17.5 MiB): cold ticket 337 ms (in-process parse 300 ms), warm p50 3.27 ms
  4 KiB range / trivial p50 x0.37
  in-process 4 KiB range: audited p50 0.556 ms, unaudited 0.136 ms: x4.09
  audit row alone    p50    0.10 ms  p99    0.30 ms   (in-process insert + commit, SQLite)
  data plane / disk   x0.72
  data plane / cache  x0.25
  data plane / Flask  x40.00
  data plane / bare   x1.07
  1 Mbp slice with pysam: htsget 120 ms (2000 reads) vs local 100 ms (2000 reads): x1.17
"""


def test_htsget_figures_from_the_benchmark_output():
    figures = {name: value for name, value, _ in compare.parse_htsget(HTSGET_OUTPUT)}
    assert len(figures) == 11
    assert figures["htsget: warm ticket p50 / `/service-info` p50"] == 1.61
    assert abs(figures["htsget: cold ticket on a WGS-scale BAI / warm"] - 337 / 3.27) < 1e-9
    assert figures["htsget: data plane / Flask route"] == 40.0


def test_wes_submit_figures_from_the_benchmark_table():
    out = (
        "| two-step (attached) | 58 | 14 | +44 | 4.14x |\n"
        "| variant-calling (shipped) | 58 | 11 | +47 | 5.27x |"
    )
    figures = [(name, value) for name, value, _ in compare.parse_wes_submit(out)]
    assert figures == [
        ("WES submit two-step: with graph check, ms", 58.0),
        ("WES submit two-step: without, ms", 14.0),
        ("WES submit variant-calling: with graph check, ms", 58.0),
        ("WES submit variant-calling: without, ms", 11.0),
    ]


def test_verdict_knows_which_way_is_better():
    assert compare.verdict(1.10, compare.LOW) == "within 10%"
    assert compare.verdict(0.90, compare.HIGH) == "within 10%"
    assert compare.verdict(1.2, compare.LOW) == "OUTSIDE: head worse"
    assert compare.verdict(1.2, compare.HIGH) == "outside: head better"
    assert compare.verdict(0.8, compare.LOW) == "outside: head better"
    assert compare.verdict(0.8, compare.HIGH) == "OUTSIDE: head worse"


def test_readme_has_the_blocks_the_benchmarks_write():
    for start, end in (
        (compare.START, compare.END),
        ("<!-- accel-bench:start -->", "<!-- accel-bench:end -->"),
    ):
        assert re.search(re.escape(start) + r".*?" + re.escape(end), README, re.DOTALL)


def test_a_difference_inside_the_noise_of_the_rounds_is_inconclusive():
    noise = compare.spread([10.0, 13.0])  # the same revision, two rounds: 30% apart
    assert compare.verdict(1.2, compare.LOW, noise).startswith("inconclusive")
    assert compare.verdict(1.4, compare.LOW, noise) == "OUTSIDE: head worse"
    assert compare.verdict(1 / 1.4, compare.HIGH, noise) == "OUTSIDE: head worse"


def test_per_round_ratios_decide_only_when_the_rounds_agree():
    results = {
        "base": {"q": {0: 4.0, 1: 4.2, 2: 4.1, 3: 4.0}},
        "head": {"q": {0: 6.0, 1: 6.1, 2: 5.9, 3: 6.2}},
    }
    ratios = compare.per_round_ratios(results, "q")
    assert len(ratios) == 4 and all(r > 1.4 for r in ratios)
    assert compare.verdict(1.5, compare.LOW, rounds=ratios) == "OUTSIDE: head worse"
    # the same median with rounds on both sides of the band is not decided
    mixed = [0.9, 1.0, 1.5, 1.7]
    assert compare.verdict(1.25, compare.LOW, rounds=mixed).startswith("inconclusive")
    line = [ln for ln in compare.table(results, [("q", compare.LOW)]) if ln.startswith("| q")]
    assert "OUTSIDE: head worse" in line[0] and "| 4 |" in line[0]
