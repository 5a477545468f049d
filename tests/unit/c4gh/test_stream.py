"""Segment arithmetic and edit lists, checked by decrypting with the crypt4gh package."""

from __future__ import annotations

import io
import os
import random

import pytest
from crypt4gh import lib
from crypt4gh.keys import c4gh as c4gh_keys

from server.c4gh import stream


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    c4gh_keys.generate(str(d / "k.sec"), str(d / "k.pub"), b"", b"t")
    from crypt4gh.keys import get_private_key, get_public_key

    return bytes(get_private_key(str(d / "k.sec"), lambda: "")), get_public_key(str(d / "k.pub"))


def test_plain_size_inverts_the_segment_layout():
    for n in (1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 5):
        full, rest = divmod(n, stream.SEGMENT)
        body = full * stream.CIPHER_SEGMENT + (rest + 28 if rest else 0)
        assert stream.plain_size(body) == n
    with pytest.raises(stream.NotCrypt4GH):
        stream.plain_size(stream.CIPHER_SEGMENT + 10)


@pytest.mark.parametrize("seed", range(12))
def test_edit_list_selects_exactly_the_ranges(pair, seed):
    secret, public = pair
    rng = random.Random(seed)
    plain = os.urandom(rng.randrange(1, 9 * stream.SEGMENT))
    enc = io.BytesIO()
    lib.encrypt([(0, secret, public)], io.BytesIO(plain), enc)
    raw = enc.getvalue()
    head = stream.read_header(io.BytesIO(raw))
    keys = stream.session_keys(head, [(0, secret, None)])
    points = sorted(rng.sample(range(len(plain) + 1), min(len(plain) + 1, 2 * rng.randint(1, 5))))
    ranges = [(a, b) for a, b in zip(points[::2], points[1::2], strict=False) if b > a]
    if not ranges:
        ranges = [(0, len(plain))]
    edits, runs = stream.region_edit_list(ranges)
    body = b"".join(
        raw[stream.cipher_offset(head.length, first) : stream.cipher_offset(head.length, last)]
        for first, last in runs
    )
    header = stream.header_for(keys, [(0, secret, public)], edits)
    out = io.BytesIO()
    lib.decrypt([(0, secret, None)], io.BytesIO(header + body), out)
    assert out.getvalue() == b"".join(plain[a:b] for a, b in ranges)
