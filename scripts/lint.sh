#!/usr/bin/env bash
# Lint the whole tree with the project's own tools (.venv, the test extra):
# ruff's rule set and format (pyproject.toml), then the import contracts
# (setup.cfg [importlinter]: HTTP only in server/web and handlers).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/ruff ] || [ ! -x .venv/bin/lint-imports ]; then
    echo "scripts/lint.sh: .venv lacks ruff or lint-imports; run scripts/setup.sh first" >&2
    exit 2
fi
status=0
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
.venv/bin/lint-imports || status=1
exit "$status"
