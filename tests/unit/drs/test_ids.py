import pytest

from server.drs import ids


@pytest.mark.parametrize(
    "drs_id,expected",
    [
        ("NA12878.bam", ids.ParsedId("file", "NA12878", "BAM")),
        ("a.b.cram", ids.ParsedId("file", "a.b", "CRAM")),
        ("x.vcf.gz", ids.ParsedId("file", "x", "VCF")),
        ("x.vcf.vcf.gz", ids.ParsedId("file", "x.vcf", "VCF")),
        ("x.bcf.csi", ids.ParsedId("index", "x", "BCF", index_ext="csi")),
        ("x.bam.bai", ids.ParsedId("index", "x", "BAM", index_ext="bai")),
        ("x.bam.bundle", ids.ParsedId("bundle", "x", "BAM")),
        ("x.bam.bundle.bam", ids.ParsedId("file", "x.bam.bundle", "BAM")),
        ("wes~" + "a" * 32, ids.ParsedId("wes", wes_id="wes~" + "a" * 32)),
    ],
)
def test_parse(drs_id, expected):
    assert ids.parse(drs_id) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x",
        "x.gz",
        ".bam",
        "../x.bam",
        "a/b.bam",
        "x.bai",
        "wes~123",
        "x.bundle",
        "-x.bam",
        "x" * 400 + ".bam",
    ],
)
def test_parse_rejects(bad):
    assert ids.parse(bad) is None


def test_round_trip():
    for fmt in ids.FORMAT_EXT:
        assert ids.parse(ids.file_id("o-1", fmt)) == ids.ParsedId("file", "o-1", fmt)
        assert ids.parse(ids.bundle_id("o-1", fmt)).kind == "bundle"
    assert ids.parse(ids.index_id("o", "CRAM", "CRAI")).index_ext == "crai"
