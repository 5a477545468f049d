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
. "$ROOT/scripts/lib/suite.sh"
SRC="$(suite_src HTSGET_COMPLIANCE_SRC "$WORK" ga4gh+htsget-compliance setup.py htsget-compliance)"
if [ ! -x "$WORK/venv/bin/htsget-compliance" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q --upgrade pip
    "$WORK/venv/bin/pip" install -q "$SRC"
fi

# A node of its own: temporary var dir, SQLite, a free port.
node_env
G="$ROOT/.venv/bin/genomeport"
"$G" dataset add compliance --access public >/dev/null
"$G" files add --dataset compliance --quiet --id htsnexus_test_NA12878 \
    "$TESTDATA/reads/htsnexus_test_NA12878.bam" "$TESTDATA/reads/htsnexus_test_NA12878.cram" >/dev/null
"$G" files add --dataset compliance --quiet --id spec-v4.3 \
    "$TESTDATA/variants/spec-v4.3.vcf.gz" "$TESTDATA/variants/spec-v4.3.bcf" >/dev/null

node_start

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
