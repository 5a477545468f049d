#!/usr/bin/env bash
# Install a single-node Slurm cluster (Debian's slurm-wlm + munge). Idempotent.
# Used by the WES cluster tests (Toil with --batchSystem slurm); start it with
# scripts/start-slurm.sh.
set -euo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq slurm-wlm munge >/dev/null
