# Sourced by the scripts that run an external test suite from a snapshot.
# snapshot_dir VARIABLE WORK MIRROR_NAME prints where the suite's snapshot is:
# $VARIABLE if set, else $WORK/src if it exists, else the local mirror of
# public repositories ($PUBLIC_MIRROR_DIR, default /work/.mirror) at
# MIRROR_NAME/repo if it exists, else $WORK/src (which the caller then reports
# as missing). tests/integration/snapshots.py is the same lookup for the tests.
snapshot_dir() {
    local variable="$1" work="$2" mirror="${PUBLIC_MIRROR_DIR:-/work/.mirror}/$3/repo"
    if [ -n "${!variable:-}" ]; then
        printf '%s\n' "${!variable}"
    elif [ ! -e "$work/src" ] && [ -d "$mirror" ]; then
        printf '%s\n' "$mirror"
    else
        printf '%s\n' "$work/src"
    fi
}

# snapshot_tree SRC WORK MARKER prints a directory holding the suite's files:
# SRC itself when SRC/MARKER exists, else, when SRC is a bare git snapshot, a
# fresh checkout of its HEAD at WORK/tree.
snapshot_tree() {
    local src="$1" work="$2" marker="$3"
    if [ -d "$src" ] && [ ! -f "$src/$marker" ] && git --git-dir="$src" rev-parse HEAD >/dev/null 2>&1; then
        rm -rf "$work/tree" && mkdir -p "$work/tree"
        git --git-dir="$src" archive HEAD | tar -x -C "$work/tree"
        src="$work/tree"
    fi
    printf '%s\n' "$src"
}

# suite_src VARIABLE WORK MIRROR_NAME MARKER LABEL prints the suite's source tree
# (snapshot_dir, then snapshot_tree). When MARKER is not in it, it says so on
# stderr and returns 3, which the caller's `set -e` turns into its exit status
# (the tests skip a suite that has no snapshot before they run its script).
suite_src() {
    local variable="$1" work="$2" mirror_name="$3" marker="$4" label="$5" src
    mkdir -p "$work"
    src="$(snapshot_tree "$(snapshot_dir "$variable" "$work" "$mirror_name")" "$work" "$marker")"
    if [ ! -f "$src/$marker" ]; then
        echo "$label: no snapshot of the suite at $src (set $variable)" >&2
        return 3
    fi
    printf '%s\n' "$src"
}
