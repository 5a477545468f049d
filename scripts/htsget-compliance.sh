#!/usr/bin/env bash
# Run the GA4GH htsget-compliance suite against a fresh node serving its two
# test datasets (htsnexus_test_NA12878 as BAM+CRAM, spec-v4.3 as VCF+BCF).
#
# The suite is not published on PyPI. Point HTSGET_COMPLIANCE_SRC at a
# snapshot of it: a source tree (with setup.py) or a bare git directory.
# Default: var/htsget-compliance/src, else the local mirror of public
# repositories ($PUBLIC_MIRROR_DIR, default /work/.mirror) at
# ga4gh+htsget-compliance/repo. It is installed into its own virtualenv
# (var/htsget-compliance/venv); nothing of it enters the repository.
#
# Prints "htsget compliance: PASSED/TOTAL" and exits 0 only when every case
# passed. The JSON report is left at var/htsget-compliance/report.json.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${HTSGET_COMPLIANCE_WORK:-$ROOT/var/htsget-compliance}"
. "$ROOT/scripts/lib/snapshot.sh"
SRC="$(snapshot_dir HTSGET_COMPLIANCE_SRC "$WORK" ga4gh+htsget-compliance)"
TESTDATA="${GENOMEPORT_TESTDATA:-$ROOT/../shared/testdata}"
PY="$ROOT/.venv/bin/python"
mkdir -p "$WORK"

SRC="$(snapshot_tree "$SRC" "$WORK" setup.py)"
if [ ! -f "$SRC/setup.py" ]; then
    echo "htsget-compliance: no snapshot of the suite at $SRC (set HTSGET_COMPLIANCE_SRC)" >&2
    exit 3
fi
if [ ! -x "$WORK/venv/bin/htsget-compliance" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q --upgrade pip
    "$WORK/venv/bin/pip" install -q "$SRC"
fi

# A node of its own: temporary var dir, SQLite, a free port.
NODE="$(mktemp -d)"
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export GENOMEPORT_VAR_DIR="$NODE/var" GENOMEPORT_PORT="$PORT" GENOMEPORT_HOST=127.0.0.1 \
       GENOMEPORT_PUBLIC_URL="http://127.0.0.1:$PORT" GENOMEPORT_WORKERS=2 GENOMEPORT_LOG_FORMAT=text
G="$ROOT/.venv/bin/genomeport"
"$G" dataset add compliance --access public >/dev/null
"$G" files add --dataset compliance --quiet --id htsnexus_test_NA12878 \
    "$TESTDATA/reads/htsnexus_test_NA12878.bam" "$TESTDATA/reads/htsnexus_test_NA12878.cram" >/dev/null
"$G" files add --dataset compliance --quiet --id spec-v4.3 \
    "$TESTDATA/variants/spec-v4.3.vcf.gz" "$TESTDATA/variants/spec-v4.3.bcf" >/dev/null

setsid "$G" serve >"$NODE/server.log" 2>&1 &
SERVER=$!
cleanup() {
    kill -TERM -- "-$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$NODE"
}
trap cleanup EXIT
for _ in $(seq 1 150); do
    curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null || { tail -30 "$NODE/server.log" >&2; exit 1; }

# The suite writes its downloaded parts under ./.fileparts
RUN="$WORK/run" && rm -rf "$RUN" && mkdir -p "$RUN" && cd "$RUN"
"$WORK/venv/bin/htsget-compliance" "http://127.0.0.1:$PORT" -f "$WORK/report.json" >"$WORK/output.txt" 2>&1 || true
"$PY" - "$WORK/report.json" <<'EOF'
import ast, json, sys
text = open(sys.argv[1]).read()
try:
    report = json.loads(text)
except ValueError:  # the suite writes the report as a Python literal
    report = ast.literal_eval(text)
tests = [t for phase in report.get("phases", []) for t in phase.get("tests", [])]
passed = [t for t in tests if t.get("status") == "PASS"]
for t in tests:
    if t.get("status") != "PASS":
        print("FAILED:", t.get("test_name"), t.get("message", ""), file=sys.stderr)
print(f"htsget compliance: {len(passed)}/{len(tests)}")
sys.exit(0 if tests and len(passed) == len(tests) else 1)
EOF
