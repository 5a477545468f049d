# Sourced (after ROOT is set) by the scripts that run an external test suite
# against a node of their own: the snapshot lookup (snapshot.sh), the node
# (node.sh), this repository's python (PY) and the shared test data (TESTDATA).
. "$ROOT/scripts/lib/snapshot.sh"
. "$ROOT/scripts/lib/node.sh"
PY="$ROOT/.venv/bin/python"
TESTDATA="${GENOMEPORT_TESTDATA:-$ROOT/../shared/testdata}"
