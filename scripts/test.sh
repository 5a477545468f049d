#!/usr/bin/env bash
# Install everything, then run the whole test suite against SQLite and the
# PostgreSQL server at 127.0.0.1:5432 (database `test`). PostgreSQL is
# required: its tests fail, never skip, when it cannot be reached.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
for extra in scripts/test-setup.d/*.sh; do
    [ -e "$extra" ] && bash "$extra"
done
export GENOMEPORT_TEST_DATABASE_URL="${GENOMEPORT_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
exec .venv/bin/python -m pytest "$@"
