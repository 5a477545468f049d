#!/usr/bin/env bash
# System packages the node and its tests use, from Debian. Idempotent: does
# nothing when every tool is already there.
set -euo pipefail
need=()
command -v samtools >/dev/null || need+=(samtools)
command -v bcftools >/dev/null || need+=(bcftools)
command -v tabix >/dev/null || need+=(tabix)
command -v curl >/dev/null || need+=(curl)
command -v slurmctld >/dev/null || need+=(slurm-wlm)  # WES cluster tests (scripts/start-slurm.sh)
command -v munged >/dev/null || need+=(munge)
# server binaries for the throwaway cluster of the database-outage test (scripts/pg-throwaway.sh)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-system: need root to install: ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
