"""The FAIR Data Point (FDP 1.2) of the node: its records as rdflib graphs.

The hierarchy is the FDP's: the root (``/fdp``, an ``fdp-o:FAIRDataPoint``)
contains catalogues (``/fdp/catalog/{id}``), a catalogue its datasets
(``/fdp/dataset/{id}``), a dataset its distributions
(``/fdp/distribution/{dataset}/{api}``: how the dataset is reached through
Beacon, htsget or DRS). The node's APIs are ``dcat:DataService`` records
(``/fdp/dataservice/{api}``) and each distribution names its access service.
Each level has a profile (``/fdp/profile/{level}``) whose constraints are the
SHACL shapes at ``/fdp/shapes/{level}``. Children are listed as an LDP
container (``ldp:contains``), as the reference FDP does and as harvesters walk
it.

A record is published only when it conforms to its level's shapes; a dataset
that does not is left out of its catalogue and answers 404
(``genomeport dataset check`` says why). Records hold no blank nodes (agents,
contacts and data-use statements are ``#`` IRIs of their record), so the same
record is the same graph, and its validation is cached.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass

import cachetools
import sqlalchemy as sa
from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from server import __version__
from server.catalogue import shapes
from server.catalogue.metadata import ACCESS_RIGHTS, DUO_IRI, Metadata, all_metadata
from server.db.tables import DataFile
from server.errors import NotFound
from server.settings import Settings

FDP = Namespace("https://w3id.org/fdp/fdp-o#")
LDP = Namespace("http://www.w3.org/ns/ldp#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
PROF = Namespace("http://www.w3.org/ns/dx/prof/")
ROLE = Namespace("http://www.w3.org/ns/dx/prof/role/")
HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
R3D = Namespace("http://www.re3data.org/schema/3-0#")
ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
IANA = "https://www.iana.org/assignments/media-types/"
SPEC_VERSION = "1.2"
STARTED = "2026-11-01T00:00:00Z"

# api -> (title, path under the node, specification, media type, dataset files it needs)
SERVICES = {
    "beacon": (
        "Beacon v2",
        "/beacon/v2",
        "https://github.com/ga4gh-beacon/beacon-v2",
        "application/json",
        None,
    ),
    "htsget": (
        "htsget 1.3",
        "/variants",
        "https://samtools.github.io/hts-specs/htsget.html",
        "application/vnd.ga4gh.htsget.v1.3.0+json",
        ("VCF", "BCF", "BAM", "CRAM"),
    ),
    "drs": (
        "DRS 1.5",
        "/ga4gh/drs/v1",
        "https://ga4gh.github.io/data-repository-service-schemas/",
        "application/json",
        ("VCF", "BCF", "BAM", "CRAM"),
    ),
    "wes": (
        "WES 1.1",
        "/ga4gh/wes/v1",
        "https://ga4gh.github.io/workflow-execution-service-schemas/",
        "application/json",
        (),  # serves no dataset as a distribution
    ),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_DUO = re.compile(r"^DUO[:_](\d{7})$")


@dataclass(frozen=True)
class Urls:
    base: str  # the node

    @property
    def root(self) -> URIRef:
        return URIRef(f"{self.base}/fdp")

    def catalog(self, cid: str) -> URIRef:
        return URIRef(f"{self.base}/fdp/catalog/{cid}")

    def dataset(self, did: str) -> URIRef:
        return URIRef(f"{self.base}/fdp/dataset/{did}")

    def distribution(self, did: str, api: str) -> URIRef:
        return URIRef(f"{self.base}/fdp/distribution/{did}/{api}")

    def service(self, api: str) -> URIRef:
        return URIRef(f"{self.base}/fdp/dataservice/{api}")

    def profile(self, level: str) -> URIRef:
        return URIRef(f"{self.base}/fdp/profile/{level}")

    def shapes(self, level: str) -> URIRef:
        return URIRef(f"{self.base}/fdp/shapes/{level}")


def urls(settings: Settings) -> Urls:
    return Urls(settings.public_url.rstrip("/"))


def new_graph() -> Graph:
    g = Graph()
    for prefix, ns in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("fdp", FDP),
        ("ldp", LDP),
        ("vcard", VCARD),
        ("prof", PROF),
        ("healthdcatap", HEALTH),
        ("r3d", R3D),
    ):
        g.bind(prefix, ns)
    return g


def _when(value) -> Literal:
    """A date or date-time literal; anything else stays a plain string (and
    fails the shapes, which say why)."""
    text = str(value)
    if _DATE.match(text):
        return Literal(text, datatype=XSD.date)
    if _DATETIME.match(text):
        return Literal(text, datatype=XSD.dateTime)
    return Literal(text)


def _iri_or_text(value: str):
    return (
        URIRef(value)
        if re.match(r"^[a-z][a-z0-9+.-]*:[^\s<>\"{}|\\^`]+$", value)
        else Literal(value)
    )


def _email(value: str):
    value = value.strip()
    return _iri_or_text(value if value.startswith("mailto:") else f"mailto:{value}")


def _record(g: Graph, subject: URIRef, u: Urls, level: str, title: str, issued, modified) -> None:
    """What every FDP record carries: title, FDP metadata, its profile."""
    g.add((subject, DCTERMS.title, Literal(title, lang="en")))
    g.add((subject, FDP.metadataIdentifier, Literal(str(subject))))
    g.add((subject, FDP.metadataIssued, Literal(issued, datatype=XSD.dateTime)))
    g.add((subject, FDP.metadataModified, Literal(modified, datatype=XSD.dateTime)))
    g.add((subject, DCTERMS.conformsTo, u.profile(level)))


# How an agent is said: its class, then the properties of its name, e-mail and
# web page. A publisher is a FOAF agent, a contact point a vCard.
FOAF_AGENT = (FOAF.Agent, FOAF.name, FOAF.mbox, FOAF.homepage)
VCARD_KIND = (VCARD.Kind, VCARD.fn, VCARD.hasEmail, VCARD.hasURL)


def _agent(g: Graph, node: URIRef, agent: dict, vocabulary=FOAF_AGENT) -> None:
    kind, name, email, url = vocabulary
    g.add((node, RDF.type, kind))
    if agent.get("name"):
        g.add((node, name, Literal(agent["name"])))
    if agent.get("email"):
        g.add((node, email, _email(agent["email"])))
    if agent.get("url"):
        g.add((node, url, _iri_or_text(agent["url"])))


def _node_agent(settings: Settings) -> dict:
    from server.catalogue.metadata import node_agent

    return node_agent(settings)


def _container(g: Graph, parent: URIRef, name: str, relation, children) -> None:
    """An LDP direct container of ``parent``'s children (how the FDP lists them)."""
    c = URIRef(f"{parent}/{name}/")
    g.add((c, RDF.type, LDP.DirectContainer))
    g.add((c, LDP.membershipResource, parent))
    g.add((c, LDP.hasMemberRelation, relation))
    for child in children:
        g.add((c, LDP.contains, child))


def _iso(value) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    if _DATETIME.match(text):
        return text
    return STARTED


# ---------------------------------------------------------------- the node's data
@dataclass
class Node:
    """What the FDP publishes, read once per request."""

    settings: Settings
    metadata: dict[str, Metadata]  # every dataset, by id
    formats: dict[str, set[str]]  # dataset -> formats of its files
    datasets: dict[str, Graph]  # the dataset records that conform
    problems: dict[str, list[str]]  # dataset -> why its record does not conform

    @property
    def u(self) -> Urls:
        return urls(self.settings)

    def distributions(self, did: str) -> list[str]:
        fmts = self.formats.get(did, set())
        return [
            api
            for api, (*_, needs) in SERVICES.items()
            if needs is None or (needs and fmts & set(needs))
        ]

    def catalogues(self) -> dict[str, str]:
        """``{catalogue id: title}`` of every catalogue a dataset names."""
        out: dict[str, str] = {}
        for meta in self.metadata.values():
            out.setdefault(meta["catalogue"], meta["catalogue_title"])
        return out


def load(session, settings: Settings) -> Node:
    metas = {m.dataset_id: m for m in all_metadata(session, settings)}
    formats: dict[str, set[str]] = {}
    for did, fmt in session.execute(sa.select(DataFile.dataset_id, DataFile.format).distinct()):
        formats.setdefault(did, set()).add(fmt)
    node = Node(settings, metas, formats, {}, {})
    for did, meta in metas.items():
        g, found = _checked_dataset(node, did, meta)
        if found:
            node.problems[did] = found
        else:
            node.datasets[did] = g
    return node


_DATASETS: cachetools.LRUCache = cachetools.LRUCache(1024)
_LOCK = threading.Lock()


def _checked_dataset(node: Node, did: str, meta: Metadata) -> tuple[Graph, list[str]]:
    """A dataset's record and its problems, built and validated once per content
    of everything it is built from (its metadata, its files' formats, the
    node's address and name)."""
    key = json.dumps(
        [
            did,
            meta.access,
            meta.values,
            sorted(node.formats.get(did, ())),
            node.u.base,
            node.settings.beacon_name,
        ],
        sort_keys=True,
        default=str,
    )
    with _LOCK:
        hit = _DATASETS.get(key)
    if hit is None:
        g = dataset_graph(node, did)
        hit = (g, shapes.problems("dataset", g))
        with _LOCK:
            _DATASETS[key] = hit
    return hit


# ---------------------------------------------------------------- records
def root_graph(node: Node) -> Graph:
    s, u = node.settings, node.u
    g = new_graph()
    r = u.root
    for t in (FDP.FAIRDataPoint, FDP.MetadataService, DCAT.DataService, DCAT.Resource):
        g.add((r, RDF.type, t))
    _record(g, r, u, "fdp", f"{s.beacon_name} FAIR Data Point", STARTED, STARTED)
    g.add(
        (
            r,
            DCTERMS.description,
            Literal(
                "The FAIR Data Point of a genomeport node: its catalogues, datasets, their "
                "distributions and the GA4GH APIs that serve them.",
                lang="en",
            ),
        )
    )
    g.add((r, DCTERMS.hasVersion, Literal(SPEC_VERSION)))
    g.add((r, FDP.fdpSoftwareVersion, Literal(f"genomeport {__version__}")))
    g.add((r, FDP.metadataIdentifier, Literal(str(r))))
    g.add((r, DCAT.endpointURL, r))
    pub = URIRef(f"{r}#publisher")
    g.add((r, DCTERMS.publisher, pub))
    _agent(g, pub, _node_agent(s))
    cats = [u.catalog(c) for c in sorted(node.catalogues())]
    for c in cats:
        g.add((r, FDP.metadataCatalog, c))
    _container(g, r, "catalog", FDP.metadataCatalog, cats)
    return g


def catalog_graph(node: Node, cid: str) -> Graph:
    cats = node.catalogues()
    if cid not in cats:
        raise NotFound(f"no catalogue {cid!r}")
    u = node.u
    g = new_graph()
    c = u.catalog(cid)
    g.add((c, RDF.type, DCAT.Catalog))
    g.add((c, RDF.type, DCAT.Resource))
    members = [m for m in node.metadata.values() if m["catalogue"] == cid]
    modified = max((_iso(m["modified"]) for m in members), default=STARTED)
    _record(g, c, u, "catalog", cats[cid], STARTED, modified)
    g.add((c, DCTERMS.description, Literal(f"Datasets of catalogue {cid}.", lang="en")))
    g.add((c, DCTERMS.isPartOf, u.root))
    pub = URIRef(f"{c}#publisher")
    g.add((c, DCTERMS.publisher, pub))
    _agent(g, pub, _node_agent(node.settings))
    published = [u.dataset(m.dataset_id) for m in members if m.dataset_id in node.datasets]
    for d in published:
        g.add((c, DCAT.dataset, d))
    for api in SERVICES:
        g.add((c, DCAT.service, u.service(api)))
    _container(g, c, "dataset", DCAT.dataset, published)
    return g


def dataset_graph(node: Node, did: str) -> Graph:
    """The record of one dataset, whether or not it conforms."""
    if did not in node.metadata:
        raise NotFound(f"no dataset {did!r}")
    m, u = node.metadata[did], node.u
    g = new_graph()
    d = u.dataset(did)
    g.add((d, RDF.type, DCAT.Dataset))
    g.add((d, RDF.type, DCAT.Resource))
    _record(g, d, u, "dataset", m["title"], _iso(m["issued"]), _iso(m["modified"]))
    g.add((d, DCTERMS.identifier, Literal(did)))
    g.add((d, DCTERMS.description, Literal(m["description"], lang="en")))
    g.add((d, DCTERMS.isPartOf, u.catalog(m["catalogue"])))
    for key, prop in (("issued", DCTERMS.issued), ("modified", DCTERMS.modified)):
        if m[key]:
            g.add((d, prop, _when(m[key])))
    for k in m["keywords"] or []:
        g.add((d, DCAT.keyword, Literal(k, lang="en")))
    for t in m["themes"] or []:
        g.add((d, DCAT.theme, _iri_or_text(t)))
    if m["licence"]:
        g.add((d, DCTERMS.license, _iri_or_text(m["licence"])))
    rights = m["access_rights"]
    g.add(
        (
            d,
            DCTERMS.accessRights,
            URIRef(ACCESS + ACCESS_RIGHTS[rights]) if rights in ACCESS_RIGHTS else Literal(rights),
        )
    )
    pub = URIRef(f"{d}#publisher")
    g.add((d, DCTERMS.publisher, pub))
    _agent(g, pub, m["publisher"] or {})
    cp = URIRef(f"{d}#contact")
    g.add((d, DCAT.contactPoint, cp))
    _agent(g, cp, m["contact"] or {}, VCARD_KIND)
    if m["data_use"]:
        ru = URIRef(f"{d}#data-use")
        g.add((d, DCTERMS.rights, ru))
        g.add((ru, RDF.type, DCTERMS.RightsStatement))
        g.add((ru, RDFS.label, Literal("Data use conditions (Data Use Ontology)", lang="en")))
        for term in m["data_use"]:
            hit = _DUO.match(term)
            g.add((ru, RDFS.seeAlso, URIRef(DUO_IRI + hit.group(1)) if hit else Literal(term)))
    if m["population_coverage"]:
        g.add((d, HEALTH.populationCoverage, Literal(m["population_coverage"], lang="en")))
    n = m["number_of_individuals"]
    if n is not None:
        g.add((d, HEALTH.numberOfUniqueIndividuals, Literal(n, datatype=XSD.nonNegativeInteger)))
    dists = [u.distribution(did, api) for api in node.distributions(did)]
    for x in dists:
        g.add((d, DCAT.distribution, x))
        g.add((x, RDF.type, DCAT.Distribution))
    _container(g, d, "distribution", DCAT.distribution, dists)
    return g


def published_dataset(node: Node, did: str) -> Graph:
    if did not in node.datasets:
        if did in node.problems:
            raise NotFound(f"dataset {did!r} is not published: its metadata does not conform")
        raise NotFound(f"no dataset {did!r}")
    return node.datasets[did]


def _service_triples(g: Graph, u: Urls, api: str) -> URIRef:
    title, path, spec, _media, _ = SERVICES[api]
    s = u.service(api)
    g.add((s, RDF.type, DCAT.DataService))
    g.add((s, DCTERMS.title, Literal(f"{title} API of this node", lang="en")))
    g.add((s, DCAT.endpointURL, URIRef(u.base + path)))
    doc_path = "" if api == "htsget" else path
    g.add((s, DCAT.endpointDescription, URIRef(f"{u.base}{doc_path}/openapi.json")))
    g.add((s, DCTERMS.conformsTo, URIRef(spec)))
    return s


def distribution_graph(node: Node, did: str, api: str) -> Graph:
    published_dataset(node, did)
    if api not in node.distributions(did):
        raise NotFound(f"dataset {did!r} has no {api} distribution")
    u, m = node.u, node.metadata[did]
    g = new_graph()
    x = u.distribution(did, api)
    title, path, _spec, media, _ = SERVICES[api]
    g.add((x, RDF.type, DCAT.Distribution))
    g.add((x, RDF.type, DCAT.Resource))
    _record(
        g,
        x,
        u,
        "distribution",
        f"{m['title']} through {title}",
        _iso(m["issued"]),
        _iso(m["modified"]),
    )
    g.add(
        (
            x,
            DCTERMS.description,
            Literal(
                f"Dataset {did} through the node's {title} API; access as the dataset's "
                "access rights say.",
                lang="en",
            ),
        )
    )
    g.add((x, DCTERMS.isPartOf, u.dataset(did)))
    access = f"{u.base}/beacon/v2/datasets/{did}" if api == "beacon" else u.base + path
    g.add((x, DCAT.accessURL, URIRef(access)))
    g.add((x, DCAT.mediaType, URIRef(IANA + media)))
    if m["licence"]:
        g.add((x, DCTERMS.license, _iri_or_text(m["licence"])))
    g.add((x, DCAT.accessService, _service_triples(g, u, api)))
    return g


def service_graph(node: Node, api: str) -> Graph:
    if api not in SERVICES:
        raise NotFound(f"no data service {api!r}")
    u = node.u
    g = new_graph()
    s = _service_triples(g, u, api)
    _record(g, s, u, "dataservice", SERVICES[api][0] + " API of this node", STARTED, STARTED)
    g.add((s, DCTERMS.isPartOf, u.root))
    for did in sorted(node.datasets):
        if api in node.distributions(did):
            g.add((s, DCAT.servesDataset, u.dataset(did)))
    return g


def profile_graph(node: Node, level: str) -> Graph:
    """The FDP profile of one level: its constraints are the level's SHACL shapes."""
    if level not in shapes.LEVELS:
        raise NotFound(f"no profile {level!r}")
    u = node.u
    g = new_graph()
    p = u.profile(level)
    g.add((p, RDF.type, PROF.Profile))
    g.add((p, RDFS.label, Literal(f"genomeport FDP {SPEC_VERSION} {level} profile", lang="en")))
    g.add((p, DCTERMS.title, Literal(f"{level} profile", lang="en")))
    g.add((p, PROF.isProfileOf, URIRef("https://w3id.org/fdp/fdp-o")))
    res = URIRef(f"{p}#shapes")
    g.add((p, PROF.hasResource, res))
    g.add((res, RDF.type, PROF.ResourceDescriptor))
    g.add((res, PROF.hasRole, ROLE.validation))
    g.add((res, DCTERMS.conformsTo, URIRef("https://www.w3.org/TR/shacl/")))
    g.add((res, DCTERMS.format, URIRef(IANA + "text/turtle")))
    g.add((res, PROF.hasArtifact, u.shapes(level)))
    return g


def check(session, settings: Settings, dataset_id: str) -> list[str]:
    """Why ``dataset_id``'s record would not be published (empty: it is)."""
    node = load(session, settings)
    if dataset_id not in node.metadata:
        raise NotFound(f"no dataset {dataset_id!r}")
    return node.problems.get(dataset_id, [])
