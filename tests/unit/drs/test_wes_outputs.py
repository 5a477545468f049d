"""WES outputs as DRS objects, and drs:// workflow inputs resolved with the caller's rights."""

from __future__ import annotations

import hashlib
import time

import pytest

from server.auth import ANONYMOUS, Caller
from server.drs import service
from server.errors import InvalidAuthentication, InvalidInput, NotFound, PermissionDenied
from server.registry import add_dataset, add_files

OWNER = Caller(subject="iss|alice", issuer="iss", expires=time.time() + 86400 * 365)
OTHER = Caller(subject="iss|bob", issuer="iss", expires=time.time() + 86400 * 365)
GRANTED = Caller(
    subject="iss|carol",
    issuer="iss",
    controlled=frozenset({"ctl"}),
    expires=time.time() + 86400 * 365,
)


@pytest.fixture
def output(db, tmp_path):
    path = tmp_path / "out.txt"
    path.write_bytes(b"hello world\n")
    drs_id = service.register_wes_output(
        db,
        run_id="run1",
        name="out.txt",
        path=path,
        owner=OWNER.label,
        url_key="run1/outputs/out.txt",
    )
    return drs_id, path


def ctx(settings, db, caller):
    return service.DrsContext(settings, db, caller)


def test_owner_reads_output(settings, db, output):
    drs_id, path = output
    obj = service.get_object(ctx(settings, db, OWNER), drs_id)
    assert obj["size"] == 12
    assert obj["checksums"][0] == {
        "type": "sha-256",
        "checksum": hashlib.sha256(b"hello world\n").hexdigest(),
    }
    url = service.access_url(ctx(settings, db, OWNER), drs_id, "https")["url"]
    assert "/data/wes/" in url
    assert service.wes_outputs(db, "run1") == {"out.txt": drs_id}


def test_others_cannot_see_output(settings, db, output):
    drs_id, _ = output
    with pytest.raises(NotFound):
        service.get_object(ctx(settings, db, OTHER), drs_id)
    # a node with no issuer serves anonymous callers their own outputs only:
    # another caller's answers as a missing one
    with pytest.raises(NotFound):
        service.get_object(ctx(settings, db, ANONYMOUS), drs_id)
    issuing = settings.with_overrides(auth_issuers=({"issuer": "iss"},))
    with pytest.raises(InvalidAuthentication):
        service.get_object(ctx(issuing, db, ANONYMOUS), drs_id)


def test_register_again_keeps_id(db, output):
    drs_id, path = output
    path.write_bytes(b"changed")
    again = service.register_wes_output(
        db, run_id="run1", name="out.txt", path=path, owner=OWNER.label, url_key="k"
    )
    assert again == drs_id


def test_resolve_for_wes_uses_callers_rights(settings, db, testdata):
    add_dataset(db, "ctl", access="controlled")
    add_files(db, [testdata / "variants/spec-v4.3.vcf.gz"], "ctl", object_id="spec", progress=False)
    uri = "drs://127.0.0.1/spec.vcf.gz"
    assert service.resolve_for_wes(settings, db, GRANTED, uri) == str(
        (testdata / "variants/spec-v4.3.vcf.gz").resolve()
    )
    with pytest.raises(PermissionDenied):
        service.resolve_for_wes(settings, db, OTHER, uri)
    with pytest.raises(InvalidAuthentication):
        service.resolve_for_wes(settings, db, ANONYMOUS, uri)
    with pytest.raises(InvalidInput):
        service.resolve_for_wes(settings, db, GRANTED, "drs://elsewhere.org/spec.vcf.gz")
    with pytest.raises(InvalidInput):
        service.resolve_for_wes(settings, db, GRANTED, "drs://127.0.0.1/spec.vcf.gz.bundle")
