"""The Beacon API tests' cohort and node: the annotated 1000 Genomes chr22 VCF
with its individuals (BFF), the countries of the cohort's places of birth, and
a module node whose tokens the test kit signs, without a query budget."""

from __future__ import annotations

from pathlib import Path

from tests.unit.auth.nodes import module_node

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
KG_VCF = SHARED / "beacon" / "test_1000G_hg38.annotated.vcf.gz"
BFF = SHARED / "beacon" / "bff"
# the cohort's places of birth (gazetteer labels) and their countries
COUNTRY = {
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Republic of Ireland": "IE",
}
SEX = {"female": "F", "male": "M"}


def trusted_node(request, tmp_path_factory, kit, populate, **overrides):
    """``module_node`` trusting ``kit``'s issuer, with no query budget
    (beacon_rate_per_minute=0) and the settings ``overrides``; ``populate(db)``
    fills its database."""
    yield from module_node(
        request,
        tmp_path_factory,
        lambda s: kit.trusting(s).with_overrides(beacon_rate_per_minute=0, **overrides),
        populate,
    )
