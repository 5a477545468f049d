#!/usr/bin/env bash
# WES test prerequisites: a single-node Slurm cluster and the client virtualenvs
# (toil, wes-service) whose pins clash with the node's. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
bash "$ROOT/scripts/install-slurm.sh"
bash "$ROOT/scripts/start-slurm.sh"
bash "$ROOT/scripts/client-venvs.sh" toil wes-service
