#!/usr/bin/env bash
# Headless Chromium (Debian) and igv.js (npm) for the genome-browser test.
# Idempotent. igv.js is installed under var/browser/node_modules.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v chromium >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
mkdir -p "$ROOT/var/browser"
cd "$ROOT/var/browser"
if [ ! -f node_modules/igv/package.json ]; then
    [ -f package.json ] || echo '{"name": "genomeport-browser-test", "private": true}' > package.json
    npm install --silent --no-audit --no-fund igv@3 >/dev/null
fi
