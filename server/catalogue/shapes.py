"""The SHACL shapes of each FAIR Data Point level, and validation against them.

Written here for genomeport from the FDP 1.2 metadata requirements and the
DCAT-AP / HealthDCAT-AP properties the GDI metadata model uses: every record
carries its FDP metadata (identifier, issued, modified, the profile it conforms
to); a dataset also needs a title, description, publisher, contact point with
an e-mail address, access rights from the EU access-right vocabulary,
well-typed dates, IRIs for themes and licence, data-use conditions as DUO terms
and its distributions. The FAIR Data Point serves each level's shapes
(``/fdp/shapes/{level}``) and publishes only records that conform (pySHACL).
"""

from __future__ import annotations

import hashlib
import threading

import cachetools
from pyshacl import validate
from rdflib import Graph, Namespace
from rdflib.namespace import RDF, SH

LEVELS = ("fdp", "catalog", "dataset", "distribution", "dataservice")

_PREFIXES = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .
@prefix ldp: <http://www.w3.org/ns/ldp#> .
@prefix fdp: <https://w3id.org/fdp/fdp-o#> .
@prefix healthdcatap: <http://healthdataportal.eu/ns/health#> .
@prefix gps: <urn:genomeport:shapes:> .
@prefix ear: <http://publications.europa.eu/resource/authority/access-right/> .
"""

_RECORD = """
    sh:property [ sh:path dct:title ; sh:minCount 1 ; sh:nodeKind sh:Literal ; sh:minLength 1 ;
                  sh:message "a title is required" ] ;
    sh:property [ sh:path fdp:metadataIdentifier ; sh:minCount 1 ; sh:maxCount 1 ] ;
    sh:property [ sh:path fdp:metadataIssued ; sh:minCount 1 ; sh:maxCount 1 ;
                  sh:datatype xsd:dateTime ] ;
    sh:property [ sh:path fdp:metadataModified ; sh:minCount 1 ; sh:maxCount 1 ;
                  sh:datatype xsd:dateTime ] ;
    sh:property [ sh:path dct:conformsTo ; sh:minCount 1 ; sh:nodeKind sh:IRI ;
                  sh:message "the record names the profile it conforms to" ] ;
"""

_DATE = """sh:or ( [ sh:datatype xsd:date ] [ sh:datatype xsd:dateTime ] ) ;
                  sh:message "{what} must be a date (2026-01-15) or a date and time" """

_AGENT = """
gps:Agent a sh:NodeShape ;
    sh:property [ sh:path foaf:name ; sh:minCount 1 ; sh:minLength 1 ;
                  sh:message "the publisher needs a name" ] ;
    sh:property [ sh:path foaf:mbox ; sh:nodeKind sh:IRI ;
                  sh:pattern "^mailto:[^@\\\\s]+@[^@\\\\s]+$" ;
                  sh:message "the publisher's e-mail must be an address (name@host)" ] ;
    sh:property [ sh:path foaf:homepage ; sh:nodeKind sh:IRI ;
                  sh:message "the publisher's url must be an IRI" ] .
"""

_SHAPES = {
    "fdp": f"""
gps:FairDataPoint a sh:NodeShape ; sh:targetClass fdp:FAIRDataPoint ;
{_RECORD}
    sh:property [ sh:path dct:publisher ; sh:minCount 1 ; sh:node gps:Agent ] ;
    sh:property [ sh:path dct:hasVersion ; sh:minCount 1 ] ;
    sh:property [ sh:path fdp:metadataCatalog ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path fdp:fdpSoftwareVersion ; sh:maxCount 1 ] .
{_AGENT}""",
    "catalog": f"""
gps:Catalog a sh:NodeShape ; sh:targetClass dcat:Catalog ;
{_RECORD}
    sh:property [ sh:path dct:publisher ; sh:minCount 1 ; sh:node gps:Agent ] ;
    sh:property [ sh:path dct:isPartOf ; sh:minCount 1 ; sh:maxCount 1 ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dcat:dataset ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dcat:service ; sh:nodeKind sh:IRI ] .
{_AGENT}""",
    "dataset": f"""
gps:Dataset a sh:NodeShape ; sh:targetClass dcat:Dataset ;
{_RECORD}
    sh:property [ sh:path dct:description ; sh:minCount 1 ; sh:nodeKind sh:Literal ;
                  sh:minLength 1 ; sh:message "a description is required" ] ;
    sh:property [ sh:path dct:identifier ; sh:minCount 1 ; sh:maxCount 1 ] ;
    sh:property [ sh:path dct:publisher ; sh:minCount 1 ; sh:maxCount 1 ; sh:node gps:Agent ] ;
    sh:property [ sh:path dcat:contactPoint ; sh:minCount 1 ; sh:node gps:Contact ;
                  sh:message "a contact point with an e-mail address is required" ] ;
    sh:property [ sh:path dct:accessRights ; sh:minCount 1 ; sh:maxCount 1 ;
                  sh:in ( ear:PUBLIC ear:RESTRICTED ear:NON_PUBLIC ) ;
                  sh:message "access_rights must be public, restricted or non_public" ] ;
    sh:property [ sh:path dct:issued ; sh:maxCount 1 ; {_DATE.format(what="issued")} ] ;
    sh:property [ sh:path dct:modified ; sh:maxCount 1 ; {_DATE.format(what="modified")} ] ;
    sh:property [ sh:path dcat:keyword ; sh:nodeKind sh:Literal ; sh:minLength 1 ] ;
    sh:property [ sh:path dcat:theme ; sh:nodeKind sh:IRI ;
                  sh:message "a theme must be an IRI (e.g. the EU data-theme HEAL)" ] ;
    sh:property [ sh:path dct:license ; sh:maxCount 1 ; sh:nodeKind sh:IRI ;
                  sh:message "the licence must be an IRI" ] ;
    sh:property [ sh:path dct:rights ; sh:node gps:DataUse ] ;
    sh:property [ sh:path healthdcatap:numberOfUniqueIndividuals ; sh:maxCount 1 ;
                  sh:datatype xsd:nonNegativeInteger ;
                  sh:message "number_of_individuals must be a whole number, 0 or more" ] ;
    sh:property [ sh:path healthdcatap:populationCoverage ; sh:nodeKind sh:Literal ] ;
    sh:property [ sh:path dct:isPartOf ; sh:minCount 1 ; sh:maxCount 1 ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dcat:distribution ; sh:minCount 1 ; sh:nodeKind sh:IRI ;
                  sh:class dcat:Distribution ] .
{_AGENT}
gps:Contact a sh:NodeShape ;
    sh:property [ sh:path vcard:fn ; sh:minCount 1 ; sh:minLength 1 ;
                  sh:message "the contact needs a name" ] ;
    sh:property [ sh:path vcard:hasEmail ; sh:minCount 1 ; sh:nodeKind sh:IRI ;
                  sh:pattern "^mailto:[^@\\\\s]+@[^@\\\\s]+$" ;
                  sh:message "the contact e-mail must be an address (name@host)" ] ;
    sh:property [ sh:path vcard:hasURL ; sh:nodeKind sh:IRI ] .
gps:DataUse a sh:NodeShape ;
    sh:property [ sh:path rdfs:seeAlso ; sh:nodeKind sh:IRI ;
                  sh:pattern "^http://purl.obolibrary.org/obo/DUO_[0-9]{{7}}$" ;
                  sh:message "data_use terms must be DUO terms (DUO:0000042)" ] .
""",
    "distribution": f"""
gps:Distribution a sh:NodeShape ; sh:targetClass dcat:Distribution ;
{_RECORD}
    sh:property [ sh:path dcat:accessURL ; sh:minCount 1 ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dcat:accessService ; sh:minCount 1 ; sh:nodeKind sh:IRI ;
                  sh:class dcat:DataService ] ;
    sh:property [ sh:path dcat:mediaType ; sh:maxCount 1 ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dct:isPartOf ; sh:minCount 1 ; sh:maxCount 1 ; sh:nodeKind sh:IRI ] .
""",
    "dataservice": """
gps:DataService a sh:NodeShape ; sh:targetClass dcat:DataService ;
    sh:property [ sh:path dct:title ; sh:minCount 1 ; sh:minLength 1 ] ;
    sh:property [ sh:path dcat:endpointURL ; sh:minCount 1 ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dcat:endpointDescription ; sh:nodeKind sh:IRI ] ;
    sh:property [ sh:path dct:conformsTo ; sh:minCount 1 ; sh:nodeKind sh:IRI ] .
""",
}

GPS = Namespace("urn:genomeport:shapes:")


def turtle(level: str) -> str:
    """The SHACL shapes of ``level`` as Turtle."""
    return _PREFIXES + _SHAPES[level]


@cachetools.cached(cachetools.LRUCache(8), lock=threading.Lock())
def graph(level: str) -> Graph:
    return Graph().parse(data=turtle(level), format="turtle")


def _short(g: Graph, node) -> str:
    try:
        return g.namespace_manager.normalizeUri(node)
    except Exception:  # noqa: BLE001 - a label only
        return str(node)


_RESULTS: cachetools.LRUCache = cachetools.LRUCache(4096)
_LOCK = threading.Lock()


def problems(level: str, data: Graph) -> list[str]:
    """What the shapes of ``level`` find wrong with ``data`` (empty: it conforms).

    Records are built without blank nodes, so the same record serializes the
    same way and its verdict is cached by the digest of its sorted triples."""
    key = (
        level,
        hashlib.sha256(
            "\n".join(sorted(data.serialize(format="nt").splitlines())).encode()
        ).hexdigest(),
    )
    with _LOCK:
        if key in _RESULTS:
            return _RESULTS[key]
    conforms, results, _ = validate(data, shacl_graph=graph(level), inference="none")
    out = []
    if not conforms:
        for result in results.subjects(RDF.type, SH.ValidationResult):
            path = results.value(result, SH.resultPath)
            message = results.value(result, SH.resultMessage)
            value = results.value(result, SH.value)
            text = f"{_short(data, path) if path is not None else 'record'}: {message}"
            if value is not None:
                text += f" (value {value})"
            out.append(text)
        out.sort()
    with _LOCK:
        _RESULTS[key] = out
    return out
