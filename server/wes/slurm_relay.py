"""The worker's half of the Toil leader's way to slurmctld.

The Toil leader on Slurm runs in its own network namespace (only a loopback);
``slurm_launcher.py`` inside listens where the Slurm clients dial slurmctld and
relays to a Unix socket in the run's ``.sandbox/ctl/``. Here the worker
(outside) listens on that socket (owned by the run user, mode 0600, in a
directory of the run) and relays each connection to the real
``SlurmctldHost:SlurmctldPort`` - the only address it ever connects to, so the
leader reaches slurmctld and nothing else of the host (not the database, not
the node's own ports). Authentication stays Slurm's: munge, whose socket is
mounted into the sandbox.

When slurm.conf names a controller address that is not a loopback address,
``leader_conf`` writes a per-run copy with ``SlurmctldHost`` pointing at
127.0.0.1, bound over the configuration inside the leader's sandbox only.

Written by hand: a byte relay from one Unix socket to one TCP address is a few
lines of ``socket``; no library does only this.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from server.wes.slurm_launcher import relay

DEFAULT_PORT = 6817
LOOPBACK = "127.0.0.1"


def conf_path() -> Path:
    return Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")


@dataclass(frozen=True)
class Controller:
    name: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.address == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.address).is_loopback
        except ValueError:
            return False


def _settings(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        key, sep, value = line.partition("=")
        if sep:
            out.append((key.strip().lower(), value.strip()))
    return out


def controller(path: Path | None = None) -> Controller:
    """The primary slurmctld of slurm.conf (``SlurmctldHost=name(address)``)."""
    path = path or conf_path()
    items = _settings(path.read_text("utf-8"))
    port = DEFAULT_PORT
    host = ""
    for key, value in items:
        if key == "slurmctldport":
            port = int(value.split("-", 1)[0])  # (a range: the clients dial its first port)
        elif key in ("slurmctldhost", "controlmachine") and not host:
            host = value
    if not host:
        raise ValueError(f"{path} names no SlurmctldHost")
    m = re.fullmatch(r"([^()\s]+)(?:\(([^()\s]+)\))?", host)
    if not m:
        raise ValueError(f"{path}: cannot read SlurmctldHost={host}")
    name, address = m.group(1), m.group(2)
    if not address:
        for key, value in items:
            if key == "controladdr":
                address = value
        address = address or socket.gethostbyname(name)
    return Controller(name, address, port)


def leader_conf(path: Path, out: Path, ctl: Controller) -> Path:
    """A copy of slurm.conf whose controller is 127.0.0.1 (for the leader's sandbox)."""
    lines = []
    for line in path.read_text("utf-8").splitlines():
        key = line.split("=", 1)[0].strip().lower()
        if key in ("slurmctldhost", "controlmachine", "controladdr"):
            continue  # (backup controllers too: the relay reaches the primary only)
        lines.append(line)
    lines.insert(0, f"SlurmctldHost={ctl.name}({LOOPBACK})")
    out.write_text("\n".join(lines) + "\n", "utf-8")
    out.chmod(0o644)
    return out


class Relay:
    """A Unix socket whose every connection is relayed to slurmctld."""

    def __init__(self, path: Path, target: tuple[str, int], uid: int | None, gid: int | None):
        self.path = Path(path)
        self.target = target
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        if uid is not None:
            os.chown(self.path, uid, gid)
        self.listener.listen(64)
        self.thread = threading.Thread(
            target=self._serve, name=f"slurm-relay {self.path}", daemon=True
        )
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            out = socket.create_connection(self.target, timeout=10)
            out.settimeout(None)
        except OSError:
            conn.close()
            return
        relay(conn, out)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
