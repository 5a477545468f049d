"""The Crypt4GH command-line tools, as a sequencing centre and a researcher use them.

``crypt4gh`` and ``crypt4gh-keygen`` are the GA4GH reference tools (the
``crypt4gh`` package on PyPI), run as child processes from the test
environment's ``bin`` directory.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{name} is missing from {BIN} (pip install crypt4gh)"
    return str(path)


def keygen(directory: Path, name: str = "researcher"):
    """A key pair made with crypt4gh-keygen: (secret path, public path). The secret
    key is left unlocked (--nocrypt): crypt4gh-keygen asks a terminal for a passphrase."""
    directory.mkdir(parents=True, exist_ok=True)
    sec, pub = directory / f"{name}.sec", directory / f"{name}.pub"
    subprocess.run(
        [tool("crypt4gh-keygen"), "--sk", str(sec), "--pk", str(pub), "-f", "--nocrypt"],
        check=True,
        capture_output=True,
    )
    return sec, pub


def encrypt(src: Path, recipient_pk: Path, out: Path) -> Path:
    """``crypt4gh encrypt --recipient_pk`` from ``src`` to ``out``."""
    with open(src, "rb") as fin, open(out, "wb") as fout:
        subprocess.run(
            [tool("crypt4gh"), "encrypt", "--recipient_pk", str(recipient_pk)],
            stdin=fin,
            stdout=fout,
            check=True,
        )
    return out


def decrypt(data: bytes, secret: Path) -> bytes:
    """``crypt4gh decrypt --sk`` of ``data`` (stdin to stdout)."""
    done = subprocess.run(
        [tool("crypt4gh"), "decrypt", "--sk", str(secret)],
        input=data,
        capture_output=True,
        check=True,
    )
    return done.stdout


def client_key_header(public: Path) -> str:
    """The ``client-public-key`` header value: base64 of the key file."""
    return base64.b64encode(public.read_bytes()).decode()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
