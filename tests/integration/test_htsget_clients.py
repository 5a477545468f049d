"""htsget against a real gunicorn node with the clients people use.

samtools and bcftools (htslib reads htsget ticket URLs natively), pysam opened
directly on the URL, and the PyPI ``htsget`` client. Each count is compared
with the file cut from the same ticket, and with pysam on the local file.
"""

from __future__ import annotations

import base64
import io
import subprocess

import httpx
import pysam
import pytest

from server.registry import add_dataset, add_files
from tests.api.test_htsget import db, settings  # noqa: F401 - module-scoped node fixtures
from tests.conftest import start_server, stop_server
from tests.support.data import add_formats

pytestmark = pytest.mark.slow

NA12878 = "reads/htsnexus_test_NA12878"
HG00100 = "reads/HG00100.chr17slice"


@pytest.fixture(scope="module")
def served(db, testdata, settings):  # noqa: F811
    """One real gunicorn node per database kind for the whole module."""
    add_dataset(db, "pub", access="public")
    add_formats(db, testdata, NA12878, (".bam", ".cram"), "pub", "NA12878")
    reference = testdata / "reads" / "mpileup.ref.fa"
    add_formats(db, testdata, HG00100, (".bam", ".cram"), "pub", "HG00100", reference=reference)
    add_files(
        db,
        [testdata / "variants/test_1000G_hg38.vcf.gz", testdata / "variants/test_1000G_hg38.bcf"],
        "pub",
        object_id="kg",
        progress=False,
    )
    server = start_server(settings)
    try:
        yield server.url
    finally:
        stop_server(server)


def joined(url: str, **params) -> bytes:
    tk = httpx.get(url, params=params, timeout=30)
    assert tk.status_code == 200, tk.text
    out = []
    for entry in tk.json()["htsget"]["urls"]:
        if entry["url"].startswith("data:;base64,"):
            out.append(base64.b64decode(entry["url"][len("data:;base64,") :]))
        else:
            resp = httpx.get(entry["url"], headers=entry.get("headers", {}), timeout=30)
            assert resp.status_code in (200, 206)
            out.append(resp.content)
    return b"".join(out)


def count_file(tmp_path, data: bytes, suffix: str, reference: str | None = None) -> int:
    path = tmp_path / f"joined{suffix}"
    path.write_bytes(data)
    if suffix in (".bam", ".cram"):
        with pysam.AlignmentFile(str(path), reference_filename=reference, check_sq=False) as fh:
            return sum(1 for _ in fh.fetch(until_eof=True))
    with pysam.VariantFile(str(path)) as fh:
        return sum(1 for _ in fh)


def samtools_count(url: str, *extra: str) -> int:
    out = subprocess.run(
        ["samtools", "view", "-c", *extra, url], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


CASES = [
    ("NA12878", {}, None),
    ("NA12878", {"format": "CRAM"}, None),
    (
        "NA12878",
        {"referenceName": "11", "start": "5000000", "end": "5010000"},
        ("11", 5000000, 5010000),
    ),
    ("NA12878", {"format": "cram", "referenceName": "20"}, ("20",)),
    (
        "NA12878",
        {"referenceName": "20", "start": "6099999", "end": "6100000"},
        ("20", 6099999, 6100000),
    ),
    ("NA12878", {"referenceName": "*"}, ("*",)),
    (
        "HG00100",
        {"format": "CRAM", "referenceName": "17", "start": "999", "end": "2000"},
        ("17", 999, 2000),
    ),
    ("HG00100", {"referenceName": "17", "start": "4199", "end": "99999999"}, ("17", 4199, 4200)),
]


@pytest.mark.parametrize(
    "obj,params,region", CASES, ids=[f"{c[0]}-{'-'.join(c[1].values()) or 'all'}" for c in CASES]
)
def test_samtools_and_pysam_on_the_htsget_url(served, testdata, tmp_path, obj, params, region):
    url = f"{served}/reads/{obj}"
    query = "&".join(f"{k}={v}" for k, v in params.items())
    full = f"{url}?{query}" if query else url
    fmt = params.get("format", "BAM").upper()
    reference = str(testdata / "reads" / "mpileup.ref.fa") if obj == "HG00100" else None
    ref_args = ["-T", reference] if reference else []
    stream_count = count_file(tmp_path, joined(url, **params), "." + fmt.lower(), reference)
    assert samtools_count(full, *ref_args) == stream_count
    with pysam.AlignmentFile(full, reference_filename=reference, check_sq=False) as fh:
        assert sum(1 for _ in fh.fetch(until_eof=True)) == stream_count
    local = testdata / (NA12878 if obj == "NA12878" else HG00100)
    with pysam.AlignmentFile(str(local) + ".bam") as fh:
        local_count = fh.count(*region) if region else fh.mapped + fh.unmapped
    assert stream_count >= local_count
    if region is None or region == ("*",):
        assert stream_count == local_count


def test_bcftools_and_pysam_on_variants(served, testdata, tmp_path):
    for fmt in ("VCF", "BCF"):
        full = f"{served}/variants/kg?format={fmt}&referenceName=chr22&start=10600000&end=10700000"
        out = subprocess.run(
            ["bcftools", "view", "-H", full], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        n = len(out.stdout.splitlines())
        with pysam.VariantFile(full) as fh:
            assert sum(1 for _ in fh) == n
        assert n >= 644


def test_pypi_htsget_client_downloads(served, testdata, tmp_path):
    import htsget

    buf = io.BytesIO()
    htsget.get(
        f"{served}/reads/NA12878",
        buf,
        reference_name="11",
        start=5000000,
        end=5010000,
        data_format="BAM",
        timeout=30,
        max_retries=1,
    )
    got = count_file(tmp_path, buf.getvalue(), ".bam")
    assert got == count_file(
        tmp_path,
        joined(f"{served}/reads/NA12878", referenceName="11", start=5000000, end=5010000),
        ".bam",
    )
    with pysam.AlignmentFile(str(testdata / (NA12878 + ".bam"))) as fh:
        assert got >= fh.count("11", 5000000, 5010000)
    buf = io.BytesIO()
    htsget.get(f"{served}/variants/kg", buf, data_format="BCF", timeout=30, max_retries=1)
    assert count_file(tmp_path, buf.getvalue(), ".bcf") == 3042
