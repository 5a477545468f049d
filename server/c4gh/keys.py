"""The node's Crypt4GH key pair: where it lives, how it is unlocked, how it changes.

``<c4gh_key_dir>/node.pub`` is what submitters encrypt for (served at
``GET /inbox/public-key``); ``node.sec`` is the secret key, written by the
``crypt4gh`` package passphrase-protected (scrypt and ChaCha20-Poly1305) and
readable by its owner only. The same pair is the archive key: archived
headers are encrypted for it, so ``genomeport crypt4gh rotate`` makes a new
pair, re-encrypts every archived header for it (``server.inbox.archive``) and
only then retires the old one to ``retired/``.

The passphrase comes from ``GENOMEPORT_C4GH_PASSPHRASE`` or from the file
named by ``GENOMEPORT_C4GH_PASSPHRASE_FILE``, which must not be readable by
group or others. It is never logged, never written to the database, never
shown by a settings dump (the field is ``repr=False``). The ``crypt4gh``
package logs key material at DEBUG level; its logger is held at WARNING
(``server.c4gh``).
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from server.errors import InvalidInput, ServiceError
from server.settings import Settings

logger = logging.getLogger(__name__)

SECRET, PUBLIC = "node.sec", "node.pub"
METHOD = 0  # X25519 + ChaCha20-Poly1305, the only method of Crypt4GH v1


class NodeKeyError(ServiceError, status=503):
    """The node's key pair is missing, locked or unreadable: the node cannot
    serve what needs it until the operator fixes that (503, with the reason)."""


@dataclass(frozen=True)
class NodeKey:
    secret: bytes  # 32 bytes, X25519
    public: bytes  # 32 bytes
    key_id: str  # hex prefix of the public key: names the key in rows and messages

    @property
    def decryption_keys(self) -> list[tuple]:
        """``keys`` as ``crypt4gh.header`` decrypts with them."""
        return [(METHOD, self.secret, None)]

    def recipients(self, public: bytes) -> list[tuple]:
        """``recipient_keys`` for a header made by the node for ``public``."""
        return [(METHOD, self.secret, public)]


def key_paths(settings: Settings) -> tuple[Path, Path]:
    directory = settings.effective_key_dir
    return directory / SECRET, directory / PUBLIC


def key_id(public: bytes) -> str:
    return public.hex()[:16]


def passphrase(settings: Settings) -> str:
    """The secret key's passphrase, from the variable or the node-only file."""
    if settings.c4gh_passphrase:
        return settings.c4gh_passphrase
    if settings.c4gh_passphrase_file:
        path = Path(settings.c4gh_passphrase_file)
        try:
            st = path.stat()
        except OSError:
            raise NodeKeyError(f"the passphrase file {path} cannot be read") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise NodeKeyError(
                f"the passphrase file {path} is readable by others (mode "
                f"{stat.S_IMODE(st.st_mode):o}); make it readable by the node only (chmod 600)"
            )
        value = path.read_text().rstrip("\n")
        if value:
            return value
    raise NodeKeyError(
        "no passphrase for the node's Crypt4GH key: set GENOMEPORT_C4GH_PASSPHRASE or "
        "GENOMEPORT_C4GH_PASSPHRASE_FILE"
    )


def generate(secret_path: Path, public_path: Path, phrase: str, comment: str) -> None:
    """A new key pair at the two paths (the secret one mode 0400)."""
    from crypt4gh.keys import c4gh

    secret_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    c4gh.generate(str(secret_path), str(public_path), phrase.encode(), comment.encode())


def keygen(settings: Settings, *, comment: str = "genomeport node") -> Path:
    """Create the node's key pair; refuses to replace an existing one (see ``rotate``)."""
    secret_path, public_path = key_paths(settings)
    if secret_path.exists() or public_path.exists():
        raise InvalidInput(
            f"the node already has a key pair in {secret_path.parent}; "
            "`genomeport crypt4gh rotate` replaces it"
        )
    generate(secret_path, public_path, passphrase(settings), comment)
    clear_cache()
    logger.info("created the node's Crypt4GH key pair", extra={"key_id": current_key_id(settings)})
    return public_path


def public_key_pem(settings: Settings) -> str:
    """The public key file as submitters use it with ``crypt4gh encrypt --recipient_pk``."""
    _, public_path = key_paths(settings)
    try:
        return public_path.read_text()
    except FileNotFoundError:
        raise NodeKeyError(
            "the node has no Crypt4GH key pair yet: run `genomeport crypt4gh keygen`"
        ) from None


def read_public(path: Path) -> bytes:
    from crypt4gh.keys import get_public_key

    return get_public_key(str(path))


def current_key_id(settings: Settings) -> str:
    return key_id(read_public(key_paths(settings)[1]))


def unlock(secret_path: Path, phrase: str) -> bytes:
    from crypt4gh.keys import get_private_key

    try:
        return bytes(get_private_key(str(secret_path), lambda: phrase))
    except SystemExit:  # the package exits on a wrong passphrase
        raise NodeKeyError(f"the passphrase does not unlock {secret_path}") from None
    except FileNotFoundError:
        raise NodeKeyError(
            "the node has no Crypt4GH key pair yet: run `genomeport crypt4gh keygen`"
        ) from None
    except (ValueError, OSError) as exc:
        raise NodeKeyError(f"{secret_path} is not a Crypt4GH secret key ({exc})") from None


_CACHE: dict[tuple, NodeKey] = {}
_LOCK = threading.Lock()


def node_key(settings: Settings) -> NodeKey:
    """The unlocked key pair, cached per process while its files are unchanged
    (unlocking runs scrypt: tens of milliseconds)."""
    secret_path, public_path = key_paths(settings)
    try:
        st = secret_path.stat()
    except FileNotFoundError:
        raise NodeKeyError(
            "the node has no Crypt4GH key pair yet: run `genomeport crypt4gh keygen`"
        ) from None
    cache_key = (str(secret_path), st.st_mtime_ns, st.st_ino)
    with _LOCK:
        hit = _CACHE.get(cache_key)
    if hit is not None:
        return hit
    secret = unlock(secret_path, passphrase(settings))
    public = read_public(public_path)
    from crypt4gh import sodium

    if bytes(sodium.derive_pk(secret)) != public:
        raise NodeKeyError(f"{public_path} is not the public key of {secret_path}")
    key = NodeKey(secret, public, key_id(public))
    with _LOCK:
        _CACHE.clear()
        _CACHE[cache_key] = key
    return key


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def parse_client_key(value: str) -> bytes:
    """A caller's public key from a ``client-public-key`` header: base64 of the key
    file (as htsget-rs and Funnel send it), or the base64 of the raw 32 bytes."""
    from crypt4gh.keys import c4gh  # noqa: F401 - the package's parsers below

    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise InvalidInput("client-public-key is not base64") from None
    if len(raw) == 32:
        return raw
    text = raw.decode("ascii", "replace").strip().splitlines()
    if (
        len(text) >= 3
        and text[0].strip() == "-----BEGIN CRYPT4GH PUBLIC KEY-----"
        and text[-1].strip() == "-----END CRYPT4GH PUBLIC KEY-----"
    ):
        try:
            key = base64.b64decode("".join(t.strip() for t in text[1:-1]), validate=True)
        except ValueError:
            key = b""
        if len(key) == 32:
            return key
    raise InvalidInput("client-public-key is not a Crypt4GH public key")


def retire(settings: Settings, old_secret: Path, old_public: Path) -> Path:
    """Move the old pair under ``retired/`` (kept for uploads encrypted before the rotation)."""
    retired = settings.effective_key_dir / "retired"
    retired.mkdir(mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = retired / f"{stamp}-{key_id(read_public(old_public))}"
    os.replace(old_secret, target.with_suffix(".sec"))
    os.replace(old_public, target.with_suffix(".pub"))
    return target


def retired_keys(settings: Settings) -> list[NodeKey]:
    """Retired pairs (newest first), unlocked with the node's passphrase."""
    retired = settings.effective_key_dir / "retired"
    out = []
    for sec in sorted(retired.glob("*.sec"), reverse=True):
        try:
            secret = unlock(sec, passphrase(settings))
            public = read_public(sec.with_suffix(".pub"))
        except (NodeKeyError, OSError, ValueError):
            continue
        out.append(NodeKey(secret, public, key_id(public)))
    return out


def serving_keys(settings: Settings) -> list[tuple]:
    """Keys that open archived headers: the node key, and during a rotation the
    new key some files already use (``node.sec.new``), so serving never stops."""
    out = list(node_key(settings).decryption_keys)
    sec, pub = key_paths(settings)
    pending = sec.with_name(sec.name + ".new")
    if pending.exists():
        try:
            st = pending.stat()
            cache_key = ("pending", str(pending), st.st_mtime_ns, st.st_ino)
            with _LOCK:
                hit = _CACHE.get(cache_key)
            if hit is None:
                secret = unlock(pending, passphrase(settings))
                public = read_public(pub.with_name(pub.name + ".new"))
                hit = NodeKey(secret, public, key_id(public))
                with _LOCK:
                    _CACHE[cache_key] = hit
            out = hit.decryption_keys + out
        except (NodeKeyError, OSError, ValueError):
            pass  # the rotation is writing it: the current key still opens every file
    return out
