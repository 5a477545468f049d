"""Beacon on controlled data, attacked as an adversary would, through real
gunicorn servers (2 workers) on SQLite and PostgreSQL.

The dataset is the 1000 Genomes chr22 test VCF (../shared/testdata/beacon),
loaded as a *controlled* dataset with its CINECA individuals metadata, minus
100 held-out people (removed with ``bcftools view -S ^...``): they are the
non-members of the membership attack. The node runs at its default privacy
settings (count threshold 5, rounding 10), except that the attacker gets an
unlimited query budget: the answers themselves must not leak, whatever the
number of queries (the budget is tested on its own below).

Each attack runs twice: with the protections on, and with them off (a node
with ``beacon_count_threshold=0`` for the membership attack; the dataset made
public, i.e. the record tier for anonymous callers, for the window search), to
show that the measurement detects the leak it guards against.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from server.beacon.metadata import load_metadata
from server.beacon.vcf import load_vcf
from server.db import Database
from server.db.tables import AuditEvent
from server.registry import add_dataset
from server.settings import Settings
from tests.conftest import (
    SHARED,
    fresh_database,
    migrated,
    node_settings,
    start_server,
    stop_server,
)
from tests.support.data import bcftools_query

KG_VCF = SHARED / "testdata" / "beacon" / "test_1000G_hg38.annotated.vcf.gz"
BFF = SHARED / "testdata" / "beacon" / "bff"
BASE = "/beacon/v2"
DATASET, GRANT = "kgc", "urn:ds:kgc"
N_HOLDOUT = N_MEMBERS = 100
MEMBER, VCF_ONLY, MADE_UP = "HG00096", "HG00104", "HG99999"  # HG00104: in the VCF, no record
# The attacks must be no better than chance beyond these margins (protections on),
# and at least this good with the protections off.
MEMBERSHIP_MARGIN = 0.15  # power at a 5% false-positive rate, minus 0.05; AUC minus 0.5
MEMBERSHIP_LEAK = (0.3, 0.7)  # power and AUC at least, with the threshold off
WINDOW_MARGIN = 0.05  # share of the target's variant sites recovered


@dataclass
class Allele:
    chrom: str
    start: int  # 0-based
    end: int
    ref: str
    alt: str
    af: float  # the public 1000 Genomes frequency (whole file)
    carriers: frozenset


@lru_cache(maxsize=1)
def full_vcf() -> tuple[list[str], list[Allele]]:
    """Every ALT allele of the whole file, with its carriers (bcftools)."""
    names = bcftools_query(KG_VCF, "-l").split()
    out = bcftools_query(KG_VCF, "-f", "%CHROM\t%POS0\t%END\t%REF\t%ALT\t%AC\t%AN[\t%GT]\n")
    alleles = []
    for line in out.splitlines():
        chrom, pos0, end, ref, alts, acs, an, section = line.split("\t", 7)
        alts, acs = alts.split(","), acs.split(",")
        if len(section) == 4 * len(names) - 1 and len(alts) < 10:
            # one-digit diploid calls: allele k of sample i is byte 4*i + 2*k
            arr = np.frombuffer(section.encode(), dtype=np.uint8)
            first, second = arr[0::4], arr[2::4]
            found = [
                np.nonzero((first == 49 + i) | (second == 49 + i))[0] for i in range(len(alts))
            ]
        else:
            split = [g.replace("|", "/").split("/") for g in section.split("\t")]
            found = [[j for j, g in enumerate(split) if str(i + 1) in g] for i in range(len(alts))]
        for i, (alt, ac) in enumerate(zip(alts, acs, strict=False)):
            alleles.append(
                Allele(
                    chrom,
                    int(pos0),
                    int(end),
                    ref,
                    alt,
                    int(ac) / int(an),
                    frozenset(names[j] for j in found[i]),
                )
            )
    return names, alleles


def split_samples() -> tuple[list[str], list[str]]:
    """(held out, members): both drawn from the people with a metadata record."""
    names, _ = full_vcf()
    with_record = {r["id"] for r in json.loads((BFF / "individuals.json").read_text())}
    pool = sorted(n for n in names if n in with_record and n != MEMBER)
    rng = random.Random(2015)
    held = rng.sample(pool, N_HOLDOUT)
    rest = [n for n in pool if n not in set(held)]
    return held, rng.sample(rest, N_MEMBERS)


def populate(db, tmp: Path, held: list[str]) -> None:
    (tmp / "held.txt").write_text("\n".join(held) + "\n")
    subset = tmp / "members.vcf.gz"
    subprocess.run(
        [
            "bcftools",
            "view",
            "-S",
            "^" + str(tmp / "held.txt"),
            "-Oz",
            "-o",
            str(subset),
            str(KG_VCF),
        ],
        check=True,
        capture_output=True,
    )
    add_dataset(db, DATASET, access="controlled", assembly="GRCh38", grant_value=GRANT)
    load_vcf(db, subset, DATASET, progress=False)
    out = tmp / "bff"
    out.mkdir()
    gone = set(held)
    for name in ("individuals", "biosamples", "runs", "analyses"):
        rows = [
            r
            for r in json.loads((BFF / f"{name}.json").read_text())
            if not {r.get("id"), r.get("individualId"), r.get("biosampleId")} & gone
        ]
        (out / f"{name}.json").write_text(json.dumps(rows))
    load_metadata(db, sorted(out.glob("*.json")), DATASET, progress=False)


@dataclass
class Node:
    settings: Settings
    db: Database
    on: str  # default settings
    off: str  # beacon_count_threshold=0
    held: list
    members: list
    kit: object


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit):
    if request.param == "postgresql":
        request.getfixturevalue("pg_available")
    tmp = tmp_path_factory.mktemp(f"attack-{request.param}")
    held, members = split_samples()
    with fresh_database(request.param, tmp) as url:
        settings = kit.trusting(
            node_settings(
                tmp / "var", url, log_format="text", beacon_rate_per_minute=0, beacon_rate_per_day=0
            )
        )
        db = migrated(settings)
        populate(db, tmp, held)
        on = start_server(settings)
        try:
            off = start_server(settings.with_overrides(beacon_count_threshold=0))
            try:
                yield Node(settings, db, on.url, off.url, held, members, kit)
            finally:
                stop_server(off)
        finally:
            stop_server(on)
            db.dispose()


def allele_query(allele: Allele, **params) -> dict:
    """The query parameters naming ``allele`` in the attacked dataset."""
    where = {"referenceName": allele.chrom, "start": str(allele.start)}
    return {**where, "alternateBases": allele.alt, "datasetIds": DATASET, **params}


def exists(client: httpx.Client, allele: Allele, **params) -> bool:
    query = allele_query(allele, referenceBases=allele.ref, assemblyId="GRCh38", **params)
    r = client.get(BASE + "/g_variants", params=query)
    assert r.status_code == 200, r.text
    return r.json()["responseSummary"]["exists"]


def in_dataset(allele: Allele, held: list[str]) -> frozenset:
    return allele.carriers - set(held)


# ---------------------------------------------------------------- tiers count people
def test_common_alleles_exist_and_singletons_do_not(node):
    _, alleles = full_vcf()
    rng = random.Random(1)
    by_count: dict[int, list] = {}
    for a in alleles:
        by_count.setdefault(len(in_dataset(a, node.held)), []).append(a)
    common = rng.sample([a for n, v in by_count.items() if n >= 100 for a in v], 15)
    singletons = rng.sample(by_count[1], 15)
    with httpx.Client(base_url=node.on, timeout=30) as client:
        assert all(exists(client, a) for a in common)
        assert not any(exists(client, a) for a in singletons)
        # the threshold itself: 4 carriers hidden, 5 shown
        assert not any(exists(client, a) for a in by_count[4][:5])
        assert all(exists(client, a) for a in by_count[5][:5])
        # counted after the filters: males carrying the allele must reach 5
        males = {
            r["id"]
            for r in json.loads((BFF / "individuals.json").read_text())
            if r["sex"]["id"] == "NCIT:C20197"
        }
        pick = [
            a
            for a in alleles
            if 2 <= len(in_dataset(a, node.held) & males) <= 4
            and len(in_dataset(a, node.held)) >= 10
        ][:4]
        pick += [a for a in alleles if 5 <= len(in_dataset(a, node.held) & males) <= 8][:4]
        for a in pick:
            assert exists(client, a, filters="NCIT:C20197") == (
                len(in_dataset(a, node.held) & males) >= 5
            )
        # the count tier: carriers with a record, thresholded and rounded
        token = node.kit.registered()
        a = common[0]
        r = client.get(
            BASE + "/individuals",
            params=allele_query(a, requestedGranularity="count"),
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert r["meta"]["returnedGranularity"] == "count"
        n = len(
            in_dataset(a, node.held) - {VCF_ONLY}
            & {r_["id"] for r_ in json.loads((BFF / "individuals.json").read_text())}
        )
        assert r["responseSummary"]["numTotalResults"] == max(round(n / 10) * 10, 10)
        assert r["responseSummary"]["exists"] is True
    with httpx.Client(base_url=node.off, timeout=30) as client:  # the rule off: all answer
        assert all(exists(client, a) for a in singletons)


# ---------------------------------------------------------------- no per-person oracle
def person_paths(person: str) -> list[tuple[str, dict]]:
    region = {"referenceName": "chr22", "start": "10500000", "end": "51000000"}
    run = {MEMBER: "SRR00000001"}.get(person, person + "-run")
    analysis = {MEMBER: "UK1_analysisId_1"}.get(person, person + "-analysis")
    return [
        (f"/individuals/{person}", {}),
        (f"/individuals/{person}/g_variants", {}),
        (f"/individuals/{person}/g_variants", region),
        (f"/individuals/{person}/biosamples", {}),
        (f"/biosamples/{person}", {}),
        (f"/biosamples/{person}/g_variants", region),
        (f"/biosamples/{person}/runs", {}),
        (f"/biosamples/{person}/analyses", {}),
        (f"/runs/{run}", {}),
        (f"/runs/{run}/g_variants", region),
        (f"/analyses/{analysis}", {}),
        (f"/analyses/{analysis}/g_variants", region),
    ]


@pytest.mark.parametrize("who", ["anonymous", "registered"])
def test_member_vcf_only_and_made_up_ids_are_indistinguishable(node, who):
    headers = {} if who == "anonymous" else {"Authorization": f"Bearer {node.kit.registered()}"}
    with httpx.Client(base_url=node.on, timeout=30, headers=headers) as client:
        for i, _ in enumerate(person_paths(MEMBER)):
            answers = []
            for person in (MEMBER, VCF_ONLY, MADE_UP):
                path, params = person_paths(person)[i]
                for include in ("HIT", "ALL"):
                    q = {
                        **params,
                        "requestedGranularity": "record",
                        "includeResultsetResponses": include,
                    }
                    g = client.get(BASE + path, params=q)
                    p = client.post(
                        BASE + path,
                        json={
                            "meta": {"apiVersion": "v2.0"},
                            "query": {
                                "requestParameters": {k: v for k, v in params.items()},
                                "requestedGranularity": "record",
                                "includeResultsetResponses": include,
                            },
                        },
                    )
                    answers.append((include, g.status_code, g.text, p.status_code, p.text))
            by_include = {}
            for include, *rest in answers:
                by_include.setdefault(include, set()).add(tuple(rest))
            for include, distinct in by_include.items():
                assert len(distinct) == 1, (person_paths(MEMBER)[i], include, distinct)
                ((status, text, *_),) = distinct
                assert status == 200 and json.loads(text)["responseSummary"]["exists"] is False


def test_record_tier_resolves_members_only(node):
    headers = {"Authorization": f"Bearer {node.kit.grant(GRANT)}"}
    with httpx.Client(base_url=node.on, timeout=30, headers=headers) as client:
        params = {"requestedGranularity": "record", "datasetIds": DATASET}
        r = client.get(BASE + f"/individuals/{MEMBER}", params=params)
        assert r.status_code == 200 and r.json()["response"]["resultSets"][0]["results"]
        member = client.get(BASE + f"/individuals/{MEMBER}/g_variants", params=params).json()
        assert member["responseSummary"]["numTotalResults"] > 0
        for person in (VCF_ONLY, MADE_UP):  # a VCF-only sample never resolves
            assert client.get(BASE + f"/individuals/{person}", params=params).status_code == 404
            body = client.get(BASE + f"/individuals/{person}/g_variants", params=params).json()
            assert body["responseSummary"] == {
                "exists": False,
                "numTotalResults": 0,
                "countPrecision": "exact",
            }


# ---------------------------------------------------------------- attack (a): window search
def window_search(client, person: str, sites: list[tuple[int, int]], max_queries: int):
    """Bisect windows of ``sites`` with /individuals/{person}/g_variants: the
    sites where the answer stays ``true`` down to one site are the person's."""
    found, asked = set(), [0]

    def ask(i, j) -> bool:
        asked[0] += 1
        r = client.get(
            BASE + f"/individuals/{person}/g_variants",
            params={
                "referenceName": "chr22",
                "start": str(sites[i][0]),
                "end": str(sites[j - 1][1]),
                "datasetIds": DATASET,
            },
        )
        assert r.status_code == 200, r.text
        return r.json()["responseSummary"]["exists"]

    def bisect(i, j):
        if asked[0] >= max_queries or not ask(i, j):
            return
        if j - i == 1:
            found.add(i)
            return
        m = (i + j) // 2
        bisect(i, m)
        bisect(m, j)

    bisect(0, len(sites))
    return found, asked[0]


def test_window_binary_search_on_a_named_individual(node):
    _, alleles = full_vcf()
    sites = sorted({(a.start, a.end) for a in alleles})
    # a block of 64 consecutive sites where the target carries a fair share
    carried = [(a.start, a.end) for a in alleles if MEMBER in a.carriers]
    best = max(
        range(0, len(sites) - 64, 16),
        key=lambda k: sum(1 for s in carried if sites[k] <= s < sites[k + 64]),
    )
    block = sites[best : best + 64]
    truth = {
        i
        for i, s in enumerate(block)
        for a in alleles
        if (a.start, a.end) == s and MEMBER in a.carriers
    }
    assert len(truth) >= 5

    def recall(found):
        return len(found & truth) / len(truth)

    results = {}
    with httpx.Client(base_url=node.on, timeout=30) as client:
        for person in (MEMBER, VCF_ONLY, MADE_UP):
            results[("on", person)] = window_search(client, person, block, 400)
        with node.db.session() as s:  # protection off: anonymous gets the record tier
            s.execute(
                sa.text("UPDATE datasets SET access = 'public' WHERE id = :d"), {"d": DATASET}
            )
        try:
            for person in (MEMBER, VCF_ONLY):
                results[("off", person)] = window_search(client, person, block, 400)
        finally:
            with node.db.session() as s:
                s.execute(
                    sa.text("UPDATE datasets SET access = 'controlled' WHERE id = :d"),
                    {"d": DATASET},
                )
    for (mode, person), (found, asked) in results.items():
        print(
            f"window search [{mode}] {person}: {asked} queries, {len(found)} sites claimed, "
            f"recall {recall(found):.2f} of the {len(truth)} sites {MEMBER} carries"
        )
    assert recall(results[("on", MEMBER)][0]) <= WINDOW_MARGIN
    assert results[("on", MEMBER)][0] == results[("on", MADE_UP)][0] == set()
    assert results[("on", VCF_ONLY)][0] == set()
    assert recall(results[("off", MEMBER)][0]) >= 0.9  # the measurement sees a leak
    assert results[("off", VCF_ONLY)][0] == set()  # VCF-only samples never resolve


# ---------------------------------------------------------------- attack (b): membership LRT
def lrt_statistic(answers: list[bool], freqs: list[float], n: int, delta: float = 1e-6) -> float:
    """Shringarpure & Bustamante (2015): log-likelihood ratio of 'in the beacon'
    against 'not in it', over queries of alleles the target carries; a beacon
    of ``n`` individuals, allele frequency ``f`` from a reference, ``delta``
    the rate at which a carried allele is missed."""
    total = 0.0
    for x, f in zip(answers, freqs, strict=False):
        f = min(max(f, 1e-5), 0.5)
        d0 = (1 - f) ** (2 * n)  # nobody of n carries it
        d1 = (1 - f) ** (2 * n - 2)  # nobody of the other n - 1 carries it
        if x:
            total += math.log((1 - delta * d1) / max(1 - d0, 1e-300))
        else:
            total += math.log(delta * d1 / d0)
    return total


def detection_power(members: list[float], others: list[float]) -> tuple[float, float]:
    """(power at a 5% false-positive rate, AUC) of 'score above the cut'."""
    cut = sorted(others)[int(0.95 * len(others))]
    power = sum(1 for m in members if m > cut) / len(members)
    wins = sum((m > o) + 0.5 * (m == o) for m in members for o in others)
    return power, wins / (len(members) * len(others))


def membership_attack(url: str, node: Node, max_af: float = 0.05) -> tuple[float, float, int]:
    names, alleles = full_vcf()
    n = len(names) - len(node.held)
    targets = {
        p: [a for a in alleles if p in a.carriers and a.af <= max_af]
        for p in node.members + node.held
    }
    wanted = {id(a): a for v in targets.values() for a in v}
    answers = {}

    def worker(chunk):
        with httpx.Client(base_url=url, timeout=60) as client:
            for a in chunk:
                answers[id(a)] = exists(client, a)

    items = list(wanted.values())
    threads = [threading.Thread(target=worker, args=(items[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    scores = {
        p: lrt_statistic([answers[id(a)] for a in v], [a.af for a in v], n)
        for p, v in targets.items()
    }
    power, auc = detection_power([scores[p] for p in node.members], [scores[p] for p in node.held])
    return power, auc, len(items)


def test_likelihood_ratio_membership_attack(node):
    on_power, on_auc, queries = membership_attack(node.on, node)
    off_power, off_auc, _ = membership_attack(node.off, node)
    print(
        f"membership LRT over {queries} rare-allele queries, {N_MEMBERS} members against "
        f"{N_HOLDOUT} held-out people: protections on: power {on_power:.2f} at 5% false "
        f"positives, AUC {on_auc:.2f}; threshold off: power {off_power:.2f}, AUC {off_auc:.2f}"
    )
    assert on_power <= 0.05 + MEMBERSHIP_MARGIN and on_auc <= 0.5 + MEMBERSHIP_MARGIN
    # the measurement sees a leak (about 4 in 10 members, by the rare alleles they carry)
    assert off_power >= MEMBERSHIP_LEAK[0] and off_auc >= MEMBERSHIP_LEAK[1]


# ---------------------------------------------------------------- the budget
def test_budget_holds_across_workers_and_connections(node):
    limit = 12
    settings = node.settings.with_overrides(
        beacon_rate_per_minute=0, beacon_rate_per_day=limit, beacon_budgets={"record": {"day": 0}}
    )
    server = start_server(settings)
    try:
        codes, retry = [], []

        def fire(k):
            for _ in range(6):  # a new connection for every request
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    r = client.get(
                        BASE + "/g_variants",
                        params={"referenceName": "chr22", "start": "16000000", "end": "16100000"},
                    )
                    codes.append(r.status_code)
                    if r.status_code == 429:
                        body = r.json()
                        assert body["error"]["errorCode"] == 429
                        retry.append(int(r.headers["Retry-After"]))

        threads = [threading.Thread(target=fire, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes.count(200) == limit and codes.count(429) == 36 - limit
        assert all(0 < s <= 86400 for s in retry)
        # another caller has a budget of its own; a record-tier caller here is unlimited
        token = node.kit.grant(GRANT)
        with httpx.Client(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            assert all(
                client.get(
                    BASE + "/g_variants", params={"datasetIds": DATASET, "variantType": "SNP"}
                ).status_code
                == 200
                for _ in range(limit + 3)
            )
        with node.db.session() as s:
            refused = s.execute(
                sa.select(sa.func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.outcome == "refused",
                    AuditEvent.status == 429,
                    AuditEvent.dataset_id == DATASET,
                )
            ).scalar_one()
        assert refused == 36 - limit
    finally:
        stop_server(server)
