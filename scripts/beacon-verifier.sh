#!/usr/bin/env bash
# Run EGA's beacon-verifier-v2 (its command-line verifier.py) against a fresh
# node whose one dataset is public, so every answer is at the record tier
# (GENOMEPORT_BEACON_DEFAULT_GRANULARITY=record: the verifier names no
# granularity). The dataset is the 1000 Genomes test VCF with its BFF metadata
# from ../shared/testdata/beacon.
#
# The verifier is not published on PyPI. Point BEACON_VERIFIER_SRC at a
# snapshot of it: a source tree (with verifier.py) or a bare git directory.
# Default: var/beacon-verifier/src, else the local mirror of public
# repositories ($PUBLIC_MIRROR_DIR, default /work/.mirror) at
# EGA-archive+beacon-verifier-v2/repo. Its few dependencies (jsonschema,
# requests, loguru) go into its own virtualenv (var/beacon-verifier/venv);
# nothing of it enters the repository.
#
# verifier.py reads its schemas from a fixed /app/; it is run from the
# snapshot's tree with that one path pointed at the tree, and with every
# request and response it makes recorded. It reports a schema violation as a
# loguru "The JSON data is not valid" line and ignores endpoints that fail
# otherwise; this script counts both, prints the URLs with their errors and
# "beacon verifier: N errors over M urls", and exits 0 only when N is 0.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${BEACON_VERIFIER_WORK:-$ROOT/var/beacon-verifier}"
. "$ROOT/scripts/lib/suite.sh"
SRC="$(suite_src BEACON_VERIFIER_SRC "$WORK" EGA-archive+beacon-verifier-v2 verifier.py beacon-verifier)"
if [ ! -x "$WORK/venv/bin/python" ] || ! "$WORK/venv/bin/python" -c "import jsonschema, requests, loguru" 2>/dev/null; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q jsonschema requests loguru
fi

# A node of its own: temporary var dir, SQLite (or GENOMEPORT_DATABASE_URL), a free port.
node_env
export GENOMEPORT_BEACON_DEFAULT_GRANULARITY=record GENOMEPORT_BEACON_RATE_PER_MINUTE=0
G="$ROOT/.venv/bin/genomeport"
"$G" dataset add kg --access public --assembly GRCh38 >/dev/null
"$G" beacon load-vcf "$TESTDATA/beacon/test_1000G_hg38.annotated.vcf.gz" --dataset kg --quiet >/dev/null
"$G" beacon load-metadata "$TESTDATA"/beacon/bff/*.json --dataset kg --quiet >/dev/null

node_start

cd "$SRC"
"$WORK/venv/bin/python" - "$SRC" "http://127.0.0.1:$PORT/beacon/v2" "$WORK/report.json" <<'EOF' 2>"$WORK/verifier.log"
import json, sys

import requests
from loguru import logger

tree, url, report = sys.argv[1].rstrip("/") + "/", sys.argv[2], sys.argv[3]
fetched, errors = [], []
logger.remove()
logger.add(lambda m: errors.append(str(m).strip()), level="ERROR")
logger.add(sys.stderr, level="ERROR")
_get = requests.get


RAW = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/"
schema_reads = []


class Local:
    """A schema the verifier's $refs name by URL, read from its own ref_schemas/."""

    status_code = 200

    def __init__(self, path):
        self.text = open(path).read()

    def json(self):
        return json.loads(self.text)


# VRS 1.3, which genomicVariations/defaultSchema.json names, is not shipped with
# the verifier and not reachable here: a stand-in with its two variation kinds,
# which carry a "type" (the legacy variation, which the node returns, has none).
VRS = "https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json"
VRS_STUB = {"$schema": "https://json-schema.org/draft/2020-12/schema", "definitions": {
    "MolecularVariation": {"type": "object", "required": ["type"],
                           "properties": {"type": {"enum": ["Allele", "Haplotype"]}}},
    "SystemicVariation": {"type": "object", "required": ["type"],
                          "properties": {"type": {"enum": ["CopyNumber"]}}},
    "Location": {"type": "object"}}}


def get(u, *a, **kw):
    if u.startswith(RAW):  # offline: the verifier ships these schemas itself
        schema_reads.append(u)
        return Local(tree + "ref_schemas/" + u[len(RAW):].split("#")[0])
    if u.split("#")[0] == VRS:
        schema_reads.append(u)
        stub = Local.__new__(Local)
        stub.text = json.dumps(VRS_STUB)
        return stub
    if not u.startswith(url.split("/beacon/")[0] + "/"):
        raise ConnectionRefusedError(f"{u}: only the node under test is reached")
    r = _get(u, *a, **kw)
    fetched.append((u, r.status_code))
    return r


requests.get = get
sys.argv = ["verifier.py", "-url", url]
sys.path.insert(0, tree)
source = open(tree + "verifier.py").read().replace("'/app/'", repr(tree))
source = source.replace("\ngeneral_checks(args.url)", "\n")  # called below
scope = {"__name__": "verifier"}
exec(compile(source, tree + "verifier.py", "exec"), scope)
# general_checks drops an endpoint whose check raised: record why instead
crashes = {}
check = scope["endpoint_check"]


def endpoint_check(endpoint, id_parameter, base):
    try:
        return check(endpoint, id_parameter, base)
    except Exception as exc:  # noqa: BLE001 - reported below
        crashes[f"{endpoint} (id: {id_parameter})"] = f"{type(exc).__name__}: {exc}"[:300]
        raise


scope["endpoint_check"] = endpoint_check
result = scope["general_checks"](url)
per_url, current = {}, None
for item in result:
    if isinstance(item, str) and item.startswith("http"):
        current = item
        per_url.setdefault(current, [])
    elif isinstance(item, list):
        per_url.setdefault(current, []).extend(str(e.message)[:300] for e in item)
# endpoints from /map that general_checks skipped because an exception ended them
listed = scope["list_endpoints"]([], _get(url + "/map").json()["response"]["endpointSets"])
json.dump({"fetched": fetched, "errors": errors, "per_url": per_url, "map": listed,
           "crashes": crashes, "schemas read": sorted(set(schema_reads))},
          open(report, "w"), indent=1)
bad = [u for u, code in fetched if code != 200]
for u, errs in per_url.items():
    for e in errs:
        print(f"ERROR {u}: {e}")
for u in bad:
    print(f"HTTP {dict(fetched)[u]} {u}")
for where, why in crashes.items():
    print(f"CRASH {where}: {why}")
n = sum(len(e) for e in per_url.values()) + len(crashes)
print(f"beacon verifier: {n} errors over {len(per_url)} urls "
      f"({len(fetched)} requests, {len(bad)} not 200, {len(errors)} error log lines)")
sys.exit(0 if n == 0 and not errors else 1)
EOF
