"""The Toil leader's one way out of its sandbox: ``python slurm_launcher.py
HOST PORT SOCKET -- COMMAND...``.

Runs inside the sandbox (a node file mounted read-only, standard library
only: the node's repository is not there). The sandbox has a network namespace
of its own with only a loopback, so nothing on the host is reachable; this
launcher listens on ``HOST:PORT`` of that loopback (the slurmctld address the
Slurm clients dial) and relays each connection to the Unix socket ``SOCKET``,
where the worker (outside) relays it to the real slurmctld and nowhere else.
Then it runs ``COMMAND`` (the Toil leader) as its child, passes it SIGTERM,
SIGINT and SIGHUP, and exits with its status.

Written by hand: a byte relay between a TCP listener and one Unix socket is
a few lines of ``socket``; no library does only this.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading

CHUNK = 1 << 16


def pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def relay(a: socket.socket, b: socket.socket) -> None:
    """Both directions until both ends are done; then close both."""
    back = threading.Thread(target=pump, args=(b, a), daemon=True)
    back.start()
    pump(a, b)
    back.join()
    a.close()
    b.close()


def handle(conn: socket.socket, path: str) -> None:
    out = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        out.connect(path)
    except OSError:
        conn.close()
        out.close()
        return
    relay(conn, out)


def serve(listener: socket.socket, path: str) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn, path), daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: slurm_launcher.py HOST PORT SOCKET -- COMMAND...", file=sys.stderr)
        return 2
    host, port, path, command = argv[0], int(argv[1]), argv[2], argv[4:]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(64)
    threading.Thread(target=serve, args=(listener, path), daemon=True).start()
    child = subprocess.Popen(command)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
