"""The Data Use Ontology (DUO) as the node uses it: term ids, their IRIs and
the labels shown beside them (on the access pages, in Beacon ``/datasets``
and in the FAIR Data Point). A term without a label here is shown by its id.
"""

from __future__ import annotations

import re

TERM = re.compile(r"^DUO:\d{7}$")
IRI = "http://purl.obolibrary.org/obo/DUO_"
LABELS = {
    "DUO:0000004": "no restriction",
    "DUO:0000042": "general research use",
    "DUO:0000006": "health or medical or biomedical research",
    "DUO:0000007": "disease specific research",
    "DUO:0000011": "population origins or ancestry research only",
    "DUO:0000012": "research specific restrictions",
    "DUO:0000015": "no general methods research",
    "DUO:0000016": "genetic studies only",
    "DUO:0000018": "not for profit, non commercial use only",
    "DUO:0000019": "publication required",
    "DUO:0000020": "collaboration required",
    "DUO:0000021": "ethics approval required",
    "DUO:0000022": "geographical restriction",
    "DUO:0000024": "publication moratorium",
    "DUO:0000026": "user specific restriction",
    "DUO:0000027": "project specific restriction",
    "DUO:0000028": "institution specific restriction",
    "DUO:0000029": "return to database or resource",
    "DUO:0000043": "clinical care use",
    "DUO:0000044": "population origins or ancestry research prohibited",
    "DUO:0000045": "not for profit organisation use only",
    "DUO:0000046": "non-commercial use only",
}
