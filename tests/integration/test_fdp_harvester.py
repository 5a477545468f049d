"""The GDI User Portal's FAIR Data Point harvester (``ckanext-fairdatapoint``)
walks a real node's /fdp (gunicorn, 2 workers) and finds every published
dataset with its title and distributions.

The harvester is a CKAN extension and is not on PyPI; it runs here from a
snapshot of its repository (a source tree or a bare git directory), looked
for at FDP_HARVESTER_SRC, then var/fdp-harvester/src, then in the local
mirror of public repositories (PUBLIC_MIRROR_DIR, default /work/.mirror, as
``GenomicDataInfrastructure+gdi-userportal-ckanext-fairdatapoint/repo``).
Without a snapshot this test is skipped. Its record provider (the code that
walks the FDP and assembles each dataset's record) is run as it is; only the
CKAN modules its package imports (``ckan``, ``ckanext.harvest``,
``ckanext.dcat``) are stubbed,
as CKAN itself is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS

from tests.conftest import start_server, stop_server
from tests.integration.snapshots import find_snapshot, needs_snapshot
from tests.support.fdp import populate

pytestmark = pytest.mark.slow

SNAPSHOT = (
    "FDP_HARVESTER_SRC",
    "fdp-harvester",
    "GenomicDataInfrastructure+gdi-userportal-ckanext-fairdatapoint",
)


def harvester_source(work: Path) -> Path:
    """The snapshot's ``ckanext`` directory, checked out under ``work``."""
    src = find_snapshot(*SNAPSHOT)
    work.mkdir(parents=True, exist_ok=True)
    if (src / "ckanext").is_dir():
        shutil.copytree(src / "ckanext", work / "ckanext")
    else:  # a bare git directory
        archive = subprocess.run(
            ["git", f"--git-dir={src}", "archive", "HEAD", "ckanext"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return work / "ckanext"


def stub_ckan(monkeypatch, ckanext_dir: Path) -> None:
    """Empty stand-ins for the CKAN modules the harvester package imports."""

    def module(name: str, **attrs) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, m)
        return m

    def asbool(value) -> bool:  # CKAN's toolkit.asbool, as the harvester's config uses it
        return str(value).strip().lower() in ("true", "yes", "on", "y", "t", "1")

    toolkit = module("ckan.plugins.toolkit", config={}, asbool=asbool, asint=int)
    module("ckan.plugins", toolkit=toolkit)
    model = module("ckan.model")
    module("ckan", plugins=sys.modules["ckan.plugins"], model=model)
    # the namespace package, without its pkg_resources declaration
    module("ckanext", __path__=[str(ckanext_dir)])
    module("ckanext.harvest", __path__=[])
    module("ckanext.harvest.harvesters", HarvesterBase=type("HarvesterBase", (), {}))
    module("ckanext.dcat", __path__=[])
    module(
        "ckanext.dcat.processors",
        RDFParser=type("RDFParser", (), {}),
        RDFParserException=type("RDFParserException", (Exception,), {}),
    )
    module(
        "ckanext.harvest.model",
        HarvestObject=type("HarvestObject", (), {}),
        HarvestObjectExtra=type("HarvestObjectExtra", (), {}),
    )


@needs_snapshot(*SNAPSHOT)
def test_harvester_finds_every_dataset_with_title_and_distributions(
    settings, db, tmp_path, monkeypatch
):
    populate(db, tmp_path)
    ckanext_dir = harvester_source(tmp_path / "harvester")
    stub_ckan(monkeypatch, ckanext_dir)
    before = set(sys.modules)
    server = start_server(settings)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # cgitb, in its package
            from ckanext.fairdatapoint.harvesters import FairDataPointCivityHarvester
            from ckanext.fairdatapoint.harvesters.domain.identifier import Identifier

        harvester = FairDataPointCivityHarvester()
        harvester.setup_record_provider(f"{server.url}/fdp", {"request_timeout": 30})
        provider = harvester.record_provider
        with warnings.catch_warnings():
            # it asks for dcat:DatasetSeries, which this rdflib's DCAT namespace lacks
            warnings.filterwarnings("ignore", "Code: DatasetSeries is not defined", UserWarning)
            guids = sorted(provider.get_record_ids())
        found = {}
        for guid in guids:
            identifier = Identifier(guid)
            assert identifier.get_id_type() == "dataset"
            url = identifier.get_id_value()
            record = Graph().parse(data=provider.get_record_by_id(guid), format="turtle")
            subject = URIRef(url)
            dists = list(record.objects(subject, DCAT.distribution))
            found[url.rsplit("/", 1)[1]] = (
                str(record.value(subject, DCTERMS.title)),
                sorted(str(record.value(d, DCAT.accessURL)) for d in dists),
                [str(record.value(d, DCTERMS.title)) for d in dists],
            )
    finally:
        stop_server(server)
        for name in set(sys.modules) - before:
            if name.startswith(("ckanext", "ckan")):
                del sys.modules[name]
    # every published dataset, and not the one whose metadata does not conform
    assert set(found) == {"demo", "ctl"}
    title, urls, dist_titles = found["ctl"]
    assert title == "Danish reference cohort"
    assert urls == [f"{server.url}/beacon/v2/datasets/ctl"]
    assert all(t and t != "None" for t in dist_titles)  # each distribution's own record
    title, urls, _ = found["demo"]
    assert title == "Demo cohort"
    assert urls == sorted(
        [
            f"{server.url}/beacon/v2/datasets/demo",
            f"{server.url}/variants",
            f"{server.url}/ga4gh/drs/v1",
        ]
    )
