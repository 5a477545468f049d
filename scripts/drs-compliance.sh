#!/usr/bin/env bash
# Run the GA4GH DRS compliance suite (auth none, bearer, passport) and drs-cli
# against a fresh node, through tests/integration/drs_interop.py.
#
# The suite is not published on PyPI. Point DRS_COMPLIANCE_SRC at a snapshot
# of it: a source tree (with compliance_suite/report_runner.py) or a bare git
# directory. Default: var/drs-compliance/src, else the local mirror of public
# repositories ($PUBLIC_MIRROR_DIR, default /work/.mirror) at
# ga4gh+drs-compliance-suite/repo. Two virtualenvs are built on first use and
# reused afterwards; nothing of either enters the repository:
#   var/drs-compliance/suite-venv    the suite's requirements.txt, from PyPI
#   var/drs-compliance/drs-cli-venv  drs-cli, from PyPI
# DRS_COMPLIANCE_PYTHON / DRS_CLI_PYTHON name other interpreters instead.
#
# Two additions to what the projects declare, both needed on Python 3.11:
# * the suite pins Flask==2.2.0 but not Werkzeug, and Werkzeug 3 removed
#   werkzeug.urls.url_quote, which Flask 2.2.0 imports; when the suite does not
#   import, Werkzeug is held to the 2.2 series, the one Flask 2.2.0 shipped with.
# * drs-cli declares no dependencies; its code needs requests and pydantic 1
#   (its own requirements.txt pins pydantic==1.6.1 and requests==2.24.0, too
#   old for Python 3.11), so "pydantic<2" and requests are installed beside it.
#
# Prints one line per check, ending "N failure(s)", and exits 0 only when there
# is none (the suite's DRS 1.2 service-info schema case is reported as KNOWN).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${DRS_COMPLIANCE_WORK:-$ROOT/var/drs-compliance}"
. "$ROOT/scripts/lib/snapshot.sh"
SRC="$(snapshot_dir DRS_COMPLIANCE_SRC "$WORK" ga4gh+drs-compliance-suite)"
PY="$ROOT/.venv/bin/python"
SUITE_VENV="$WORK/suite-venv"
CLI_VENV="$WORK/drs-cli-venv"
CLI_PKGS=("drs-cli" "pydantic<2" "requests")
mkdir -p "$WORK"

TREE=""
cleanup() { [ -z "$TREE" ] || rm -rf "$TREE"; }
trap cleanup EXIT
if [ -d "$SRC" ] && [ ! -f "$SRC/compliance_suite/report_runner.py" ] \
        && git --git-dir="$SRC" rev-parse HEAD >/dev/null 2>&1; then
    # A tree of this run's own: the suite writes its output/ next to its code.
    TREE="$(mktemp -d "$WORK/tree.XXXXXX")"
    git --git-dir="$SRC" archive HEAD | tar -x -C "$TREE"
    SRC="$TREE"
fi
if [ ! -f "$SRC/compliance_suite/report_runner.py" ] || [ ! -f "$SRC/requirements.txt" ]; then
    echo "drs-compliance: no snapshot of the suite at $SRC (set DRS_COMPLIANCE_SRC)" >&2
    exit 3
fi

# Each virtualenv records what it was built from and is rebuilt when that
# changes; one build at a time (concurrent runs wait on the lock).
build_suite_venv() {
    local stamp
    stamp="$(sha256sum "$SRC/requirements.txt" | cut -d' ' -f1)"
    [ "$(cat "$SUITE_VENV/.built-from" 2>/dev/null)" = "$stamp" ] && return
    rm -rf "$SUITE_VENV"
    python3 -m venv "$SUITE_VENV"
    "$SUITE_VENV/bin/pip" install -q --upgrade pip
    "$SUITE_VENV/bin/pip" install -q -r "$SRC/requirements.txt"
    if ! (cd "$SRC" && PYTHONPATH="$SRC" "$SUITE_VENV/bin/python" -c "import compliance_suite.report_runner") 2>/dev/null; then
        "$SUITE_VENV/bin/pip" install -q "Werkzeug>=2.2,<2.3"
        (cd "$SRC" && PYTHONPATH="$SRC" "$SUITE_VENV/bin/python" -c "import compliance_suite.report_runner")
    fi
    echo "$stamp" >"$SUITE_VENV/.built-from"
}
build_cli_venv() {
    local stamp="${CLI_PKGS[*]}"
    [ "$(cat "$CLI_VENV/.built-from" 2>/dev/null)" = "$stamp" ] && return
    rm -rf "$CLI_VENV"
    python3 -m venv "$CLI_VENV"
    "$CLI_VENV/bin/pip" install -q --upgrade pip
    "$CLI_VENV/bin/pip" install -q "${CLI_PKGS[@]}"
    "$CLI_VENV/bin/python" -c "import drs_cli.client"
    echo "$stamp" >"$CLI_VENV/.built-from"
}
(
    flock 9
    [ -n "${DRS_COMPLIANCE_PYTHON:-}" ] || build_suite_venv
    [ -n "${DRS_CLI_PYTHON:-}" ] || build_cli_venv
) 9>"$WORK/.lock"

"$PY" "$ROOT/tests/integration/drs_interop.py" --suite "$SRC" \
    --suite-python "${DRS_COMPLIANCE_PYTHON:-$SUITE_VENV/bin/python}" \
    --drs-cli-python "${DRS_CLI_PYTHON:-$CLI_VENV/bin/python}"
