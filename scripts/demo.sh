#!/usr/bin/env bash
# Install everything, load the synthetic demo cohort from seed_data/ and serve
# it on http://127.0.0.1:8080, printing example requests that work.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/genomeport demo "$@"
