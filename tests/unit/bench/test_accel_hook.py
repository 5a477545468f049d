"""bench/accel_hook.py really puts the plain code path in place of each acceleration.

Each case builds the app in a fresh interpreter (the hook patches the node's
modules when it is imported) and reports which bridge, views, parameter
validator and HTTP protocol it got.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import json, sys
sys.path.insert(0, {repo!r})
import bench.accel_hook as hook
cx = hook.asgi_from_env()
inner = cx._middleware_app
cx.middleware._build_middleware_stack()
from server import validation
print(json.dumps({{
    "bridge": type(inner.asgi_app).__name__,
    "views": sorted({{type(v).__name__ for v in inner.app.view_functions.values()}}),
    "validator": validation.VALIDATOR_MAP["parameter"].__name__,
    "http": str(hook.Worker.CONFIG_KWARGS["http"]),
}}))
"""


def probe(tmp_path: Path, off: str) -> dict:
    """What the app gets with ``off`` switched off (tests/conftest.py clears GENOMEPORT_*)."""
    var = tmp_path / (off.replace(",", "-") or "none")
    code = PROBE.format(repo=str(REPO))
    env = {**os.environ, "BENCH_ACCEL_OFF": off, "GENOMEPORT_VAR_DIR": str(var)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_all_on_is_the_node_as_it_runs(tmp_path):
    got = probe(tmp_path, "")
    assert got["bridge"] == "OneHopWSGI"
    assert "LeanOperation" in got["views"]
    assert got["validator"] == "CachedParameterValidator"
    assert "ZeroCopyHttpToolsProtocol" in got["http"]


def test_all_off_is_the_dependencies_own_path(tmp_path):
    got = probe(tmp_path, "bridge,invocation,validators,zerocopy")
    assert got["bridge"] == "WSGIMiddleware"  # a2wsgi, Connexion's own bridge
    assert "LeanOperation" not in got["views"]
    assert got["validator"] == "ParameterValidator"
    assert got["http"] == "httptools"


def test_an_unknown_name_is_refused(tmp_path):
    with pytest.raises(AssertionError, match="unknown accelerations"):
        probe(tmp_path, "bridge,turbo")
