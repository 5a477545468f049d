"""Attacks on the WES sandbox, as a caller without any grant would try them,
against a real node (gunicorn) and a real ``genomeport worker``.

Each attack is a CommandLineTool that runs an attached shell script and always
exits 0, so the run COMPLETEs either way and its output shows what the tool
got. Every test runs twice: with the sandbox (``wes_sandbox=bwrap``, the
default) the secret never appears; with it switched off (``wes_sandbox=none``)
the same attack gets it, which proves the test can see the hole.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.integration.test_wes_workflows import BASE, start_worker, stop, wait_done
from tests.support.wes import attachments, run_form

pytestmark = pytest.mark.slow

ATTACK = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [bash]
inputs:
  script: {type: File, inputBinding: {position: 1}}
  args: {type: 'string[]', default: [], inputBinding: {position: 2}}
outputs:
  out: stdout
stdout: out.txt
"""

CAT = """\
for f in "$@"; do echo "== $f"; cat "$f" 2>&1; done
exit 0
"""

CONNECT = """\
for t in "$@"; do
  host=${t%:*}; port=${t##*:}
  if timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "CONNECTED $t"
  else
    echo "REFUSED $t"
  fi
done
exit 0
"""


@pytest.fixture
def db_url(tmp_path):  # SQLite in var/: the node's database file is one more secret to steal
    return f"sqlite:///{tmp_path / 'var' / 'genomeport.db'}"


class Node:
    def __init__(self, settings, server, worker, issuer):
        self.settings, self.server, self.worker, self.issuer = settings, server, worker, issuer
        self.client = httpx.Client(base_url=server.url, timeout=30)

    def token(self, sub: str) -> dict:
        return {
            "Authorization": "Bearer "
            + self.issuer.access_token(
                sub, audience=self.settings.with_overrides(public_url=self.server.url).audience
            )
        }

    def submit(self, sub: str, script: str, args: list[str], workflow: str = ATTACK) -> str:
        resp = self.client.post(
            f"{BASE}/runs",
            headers=self.token(sub),
            data=run_form(
                "attack.cwl", {"script": {"class": "File", "location": "attack.sh"}, "args": args}
            ),
            files=attachments(("attack.cwl", workflow), ("attack.sh", script)),
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["run_id"]

    def finish(self, sub: str, run_id: str) -> dict:
        self.client.headers.update(self.token(sub))
        return wait_done(self.client, run_id, timeout=180)

    def everything(self, log: dict) -> str:
        """All the run shows its caller: the output file and both engine logs."""
        parts = [json.dumps(log)]
        out = log.get("outputs", {}).get("out")
        if out:
            parts.append(self.client.get(out["location"]).text)
        for key in ("stdout", "stderr"):
            if log["run_log"].get(key):
                parts.append(self.client.get(log["run_log"][key]).text)
        return "\n".join(parts)

    def attack(self, script: str, args: list[str], sub: str = "mallory") -> tuple[dict, str]:
        run_id = self.submit(sub, script, args)
        log = self.finish(sub, run_id)
        assert log["state"] == "COMPLETE", log["run_log"]["system_logs"]
        return log, self.everything(log)


def dev_issuer(settings):
    """The development issuer, its keys in the node's var/ and its userinfo served."""
    from server.auth.issuer import LocalIssuer
    from tests.conftest import free_port

    port = free_port()
    issuer = LocalIssuer(Path(settings.var_dir) / "issuer", f"http://127.0.0.1:{port}")
    return issuer, issuer.start(port=port)


@contextlib.contextmanager
def live_node(settings, issuer, userinfo):
    """A gunicorn node and a real ``genomeport worker`` on ``settings``; all
    stopped afterwards, the issuer's userinfo server included."""
    server = start_server(settings)
    settings = settings.with_overrides(public_url=server.url)
    worker = start_worker(settings, server.url)
    n = Node(settings, server, worker, issuer)
    try:
        yield n
    finally:
        n.client.close()
        stop(worker)
        stop_server(server)
        userinfo.shutdown()


@pytest.fixture(params=["bwrap", "none"])
def node(request, settings, db):
    """A node with an issuer (callers have no grant) and the sandbox on or off."""
    from server.auth.urls import signing_key

    issuer, userinfo = dev_issuer(settings)
    settings = settings.with_overrides(
        signing_key="",
        auth_issuers=(issuer.settings_entry(),),
        wes_poll_ms=100,
        wes_sandbox=request.param,
    )
    signing_key(settings)  # var/signing.key exists, as on a production node
    with live_node(settings, issuer, userinfo) as n:
        n.sandboxed = request.param == "bwrap"
        yield n


def test_a_tool_cannot_read_the_node_secrets(node):
    var = Path(node.settings.var_dir).resolve()
    key = (var / "signing.key").read_text().strip()
    issuer_keys = json.loads((var / "issuer" / "keys.json").read_text())
    private = _private_part(issuer_keys)
    db_file = var / "genomeport.db"
    assert key and private and db_file.is_file()
    _, seen = node.attack(
        CAT, [str(var / "signing.key"), str(var / "issuer" / "keys.json"), str(db_file)]
    )
    leaked = [
        name
        for name, secret in (
            ("signing key", key),
            ("issuer private key", private),
            ("database", "SQLite format 3"),
        )
        if secret in seen
    ]
    if node.sandboxed:
        assert leaked == [], leaked
    else:
        assert leaked == ["signing key", "issuer private key", "database"]


def _private_part(keys) -> str:
    """A private-key parameter of the development issuer (RSA 'd' or a PEM body)."""
    text = json.dumps(keys)
    for marker in ('"d": "', "PRIVATE KEY"):
        at = text.find(marker)
        if at >= 0:
            return text[at : at + 60]
    raise AssertionError("no private key in the issuer's key file")


def test_a_tool_cannot_read_another_callers_run(node):
    secret = "victim-secret-" + uuid.uuid4().hex
    victim = node.submit("alice", f"echo {secret}\nexit 0\n", [])
    assert node.finish("alice", victim)["state"] == "COMPLETE"
    victim_dir = node.settings.effective_wes_work_dir / victim
    assert secret in (victim_dir / "outputs" / "out.txt").read_text()
    _, seen = node.attack(
        CAT,
        [
            str(victim_dir / "outputs" / "out.txt"),
            str(victim_dir / "inputs" / "attack.sh"),
            str(victim_dir / "stdout.txt"),
        ],
    )
    assert (secret in seen) is not node.sandboxed


def test_a_tool_cannot_read_system_secrets(node):
    _, seen = node.attack(CAT, ["/etc/shadow", "/etc/gshadow", "/root/.bash_history"])
    assert ("root:" in seen) is not node.sandboxed


def _host_address() -> str:
    """This host's address on its default route (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
        return s.getsockname()[0]


def test_a_tool_cannot_reach_any_address(node):
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    accepted: list = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    node_port = node.server.url.rsplit(":", 1)[1]
    targets = [
        "127.0.0.1:5432",
        f"127.0.0.1:{node_port}",
        f"{_host_address()}:{listener.getsockname()[1]}",
    ]
    try:
        _, seen = node.attack(CONNECT, targets)
    finally:
        listener.close()
    connected = [t for t in targets if f"CONNECTED {t}" in seen]
    if node.sandboxed:
        assert connected == [] and all(f"REFUSED {t}" in seen for t in targets), seen[-500:]
    else:
        assert connected == targets, seen[-500:]


# ------------------------------------------------------------------ limits
SLEEP_TOOL = "sleep 300 & sleep 301; wait\n"
BIG = (
    "/usr/bin/python3 -c 'x = bytearray(3 * 1024 ** 3); print(\"ALLOCATED\", len(x))' 2>&1\n"
    "exit 0\n"
)


@pytest.fixture
def limited(request, settings, db):
    issuer, userinfo = dev_issuer(settings)
    settings = settings.with_overrides(
        auth_issuers=(issuer.settings_entry(),), wes_poll_ms=100, **request.param
    )
    with live_node(settings, issuer, userinfo) as n:
        yield n


@pytest.mark.parametrize("limited", [{"wes_run_wall_seconds": 4}], indirect=True)
def test_wall_time_limit_kills_the_run(limited):
    started = time.monotonic()
    run_id = limited.submit("mallory", SLEEP_TOOL, [])
    log = limited.finish("mallory", run_id)
    assert log["state"] == "EXECUTOR_ERROR"
    assert any("wall-time limit of 4 s exceeded" in line for line in log["run_log"]["system_logs"])
    assert time.monotonic() - started < 120
    assert subprocess.run(["pgrep", "-f", "sleep 30[01]"], capture_output=True).stdout == b""


@pytest.mark.parametrize(
    "limited, allocated",
    [({"wes_run_memory_mb": 2048}, False), ({"wes_run_memory_mb": 0}, True)],
    indirect=["limited"],
)
def test_memory_limit_stops_a_tool(limited, allocated):
    log, seen = limited.attack(BIG, [])
    assert ("ALLOCATED" in seen) is allocated
    assert ("MemoryError" in seen) is not allocated


SWAP = """\
run=$(dirname "$(dirname "$PWD")")
for f in stdout.txt stderr.txt tasks/tool-1.stdout tasks/tool-1.stderr; do
  ln -sfn "$1" "$run/$f.swap" && mv -f "$run/$f.swap" "$run/$f"
done
echo swapped
exit 0
"""


@pytest.mark.parametrize("node", ["bwrap"], indirect=True)
def test_a_run_cannot_turn_its_logs_into_links_to_node_files(node):
    """The run directory is the run's own: it may replace the names of its logs
    with links to the node's files. The node reads its logs by descriptor and
    serves nothing that resolves outside the run directory."""
    key_path = Path(node.settings.var_dir).resolve() / "signing.key"
    key = key_path.read_text().strip()
    log, seen = node.attack(SWAP, [str(key_path)])
    run_dir = node.settings.effective_wes_work_dir / log["run_id"]
    assert (run_dir / "stdout.txt").is_symlink()  # the swap happened
    assert log["outputs"]["out"]["basename"] == "out.txt"  # outputs still read from the engine
    for task in log["task_logs"]:
        for key_name in ("stdout", "stderr"):
            seen += node.client.get(task[key_name]).text
    assert key not in seen
    assert node.client.get(log["run_log"]["stdout"]).status_code == 404
