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
# postgres_fdw, for the partitions moved to a second cluster (tests/integration/
# test_beacon_partitions.py); Debian ships it in postgresql-NN, postgresql-contrib
# names it on other layouts
compgen -G "/usr/share/postgresql/*/extension/postgres_fdw.control" >/dev/null ||
    need+=(postgresql-contrib)
command -v bwrap >/dev/null || need+=(bubblewrap)  # the WES sandbox (server/wes/sandbox.py)
command -v prlimit >/dev/null || need+=(util-linux)
command -v setfacl >/dev/null || need+=(acl)
PATH="$PATH:/usr/sbin:/sbin" command -v ip >/dev/null || need+=(iproute2)  # the Toil leader's loopback alias (sandbox.py)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-system: need root to install: ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The WES sandbox's user: every workflow tool runs as genomeport-run, which owns
# nothing of the node (server/wes/sandbox.py). Needs root; skipped otherwise.
RUN_USER=genomeport-run
if [ "$(id -u)" = 0 ]; then
    getent group "$RUN_USER" >/dev/null || groupadd --system "$RUN_USER"
    id "$RUN_USER" >/dev/null 2>&1 || useradd --system --gid "$RUN_USER" --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_USER"
    # Sandboxed Toil jobs on a compute node start bwrap as that user, which must
    # therefore reach the Python the engines run on. Where that Python lives below
    # a directory others may not search (a pyenv under /root), grant the run user
    # search (x, not read) on just those directories.
    prefix=$("${PYTHON:-python3}" -c 'import sys; print(sys.base_prefix)')
    dir=$prefix
    while [ "$dir" != "/" ]; do
        if [ -z "$(find "$dir" -maxdepth 0 -perm -o=x)" ]; then
            setfacl -m "u:$RUN_USER:x" "$dir"
        fi
        dir=$(dirname "$dir")
    done
fi
