"""FAIR Data Point responses: a record of the node, serialized as asked.

``respond(session, settings, kind, args, media)`` builds one record
(``server.catalogue.fdp``), checks it against its level's SHACL shapes and
serializes it with rdflib: Turtle by default, JSON-LD, RDF/XML or N-Triples
by content negotiation. The shapes themselves (``/fdp/shapes/{level}``) are
served in the same serializations.
"""

from __future__ import annotations

import logging

from rdflib import Graph

from server.catalogue import fdp, shapes
from server.errors import NotFound, ServiceError
from server.settings import Settings

logger = logging.getLogger(__name__)

# media type -> rdflib serializer; the first is the default
MEDIA = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}
FORMATS = {
    "ttl": "text/turtle",
    "jsonld": "application/ld+json",
    "rdf": "application/rdf+xml",
    "nt": "application/n-triples",
}
# the level whose shapes each kind of record answers to
LEVEL = {
    "root": "fdp",
    "catalog": "catalog",
    "dataset": "dataset",
    "distribution": "distribution",
    "dataservice": "dataservice",
}


class NotAcceptable(ServiceError, status=406):
    error = "NotAcceptable"


def _graph(node: fdp.Node, kind: str, args: tuple) -> Graph:
    if kind == "root":
        return fdp.root_graph(node)
    if kind == "catalog":
        return fdp.catalog_graph(node, *args)
    if kind == "dataset":
        return fdp.published_dataset(node, *args)
    if kind == "distribution":
        return fdp.distribution_graph(node, *args)
    if kind == "dataservice":
        return fdp.service_graph(node, *args)
    if kind == "profile":
        return fdp.profile_graph(node, *args)
    if kind == "shapes":
        if args[0] not in shapes.LEVELS:
            raise NotFound(f"no shapes {args[0]!r}")
        return shapes.graph(args[0])
    raise NotFound(f"no FAIR Data Point record {kind!r}")


def record(session, settings: Settings, kind: str, *args: str) -> Graph:
    """One record of the FDP, only if it conforms to its level's shapes."""
    node = fdp.load(session, settings)
    g = _graph(node, kind, args)
    level = LEVEL.get(kind)
    if level and kind != "dataset":  # datasets were checked as the node was read
        found = shapes.problems(level, g)
        if found:
            logger.warning("FDP %s record %s does not conform: %s", kind, args, found)
            raise NotFound(f"the {kind} record is not published: it does not conform")
    return g


def serialize(g: Graph, media: str) -> str:
    return g.serialize(format=MEDIA[media])


def respond(session, settings: Settings, kind: str, args: tuple, media: str) -> tuple[str, str]:
    """``(body, content type)`` of one record in ``media`` (one of ``MEDIA``)."""
    if media not in MEDIA:
        raise NotAcceptable(f"no RDF serialization for {media!r}; offered: {', '.join(MEDIA)}")
    body = serialize(record(session, settings, kind, *args), media)
    charset = "" if media == "application/ld+json" else "; charset=utf-8"
    return body, media + charset
