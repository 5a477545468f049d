"""The node key pair: passphrase sources, refusals, client keys, no key in logs."""

from __future__ import annotations

import base64
import logging
import os

import pytest

from server.c4gh import keys, stream
from server.errors import InvalidInput
from server.settings import Settings
from tests.support import c4gh


def node(tmp_path, **kw) -> Settings:
    return Settings(var_dir=str(tmp_path / "var"), **kw)


def test_keygen_locks_the_secret_key_and_refuses_to_replace_it(tmp_path):
    settings = node(tmp_path, c4gh_passphrase="correct horse")
    public = keys.keygen(settings)
    sec, pub = keys.key_paths(settings)
    assert public == pub and (os.stat(sec).st_mode & 0o077) == 0
    assert b"PRIVATE KEY" in sec.read_bytes() and b"correct horse" not in sec.read_bytes()
    with pytest.raises(InvalidInput):
        keys.keygen(settings)
    wrong = node(tmp_path, c4gh_passphrase="wrong")
    keys.clear_cache()
    with pytest.raises(keys.NodeKeyError):
        keys.node_key(wrong)
    assert keys.node_key(settings).public == keys.read_public(pub)


def test_passphrase_file_must_be_private(tmp_path):
    phrase = tmp_path / "phrase"
    phrase.write_text("from a file\n")
    os.chmod(phrase, 0o644)
    with pytest.raises(keys.NodeKeyError, match="readable by others"):
        keys.passphrase(node(tmp_path, c4gh_passphrase_file=str(phrase)))
    os.chmod(phrase, 0o600)
    assert keys.passphrase(node(tmp_path, c4gh_passphrase_file=str(phrase))) == "from a file"
    with pytest.raises(keys.NodeKeyError, match="no passphrase"):
        keys.passphrase(node(tmp_path))


def test_passphrase_is_not_in_the_settings_repr(tmp_path):
    assert "hunter2" not in repr(node(tmp_path, c4gh_passphrase="hunter2"))


def test_client_key_header_forms(tmp_path):
    _, pub = c4gh.keygen(tmp_path, "client")
    raw = keys.read_public(pub)
    assert keys.parse_client_key(c4gh.client_key_header(pub)) == raw
    assert keys.parse_client_key(base64.b64encode(raw).decode()) == raw
    for bad in (
        "%%%",
        base64.b64encode(b"x" * 31).decode(),
        base64.b64encode(b"-----BEGIN").decode(),
    ):
        with pytest.raises(InvalidInput):
            keys.parse_client_key(bad)


def test_no_key_material_is_logged(tmp_path, caplog, testdata):
    settings = node(tmp_path, c4gh_passphrase="pp")
    keys.keygen(settings)
    enc = c4gh.encrypt(
        testdata / "variants/spec-v4.3.vcf.gz", keys.key_paths(settings)[1], tmp_path / "x.c4gh"
    )
    caplog.set_level(logging.DEBUG)
    key = keys.node_key(settings)
    with open(enc, "rb") as fh:
        head = stream.read_header(fh)
        data_keys = stream.session_keys(head, key.decryption_keys)
        b"".join(stream.segments(fh, data_keys))
    text = caplog.text.lower()
    for secret in [key.secret, *data_keys]:
        assert secret.hex() not in text and secret.hex().upper().lower() not in text
