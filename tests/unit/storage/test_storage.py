import io
import tokenize
from pathlib import Path

import pytest

from server.errors import DataChanged, ServiceError
from server.settings import Settings
from server.storage import Stat, check_unchanged, for_location, is_local
from server.storage.local import LocalStorage
from server.storage.s3 import S3Storage

REPO = Path(__file__).resolve().parents[3]


def test_one_place_tells_the_kind_of_location(tmp_path):
    assert is_local("/data/a.bam") and is_local(tmp_path)
    assert not is_local("s3://bucket/a.bam")
    assert isinstance(for_location("/data/a.bam"), LocalStorage)
    assert isinstance(for_location("s3://bucket/a.bam", Settings()), S3Storage)


def test_unknown_scheme_and_s3_without_settings_are_refused():
    with pytest.raises(ServiceError, match="gs"):
        for_location("gs://bucket/a.bam", Settings())
    with pytest.raises(ServiceError, match="S3 settings"):
        for_location("s3://bucket/a.bam")


def test_check_unchanged_skips_what_is_not_on_record():
    check_unchanged(None, Stat(1, 1))
    check_unchanged(Stat(None, None), Stat(1, 1))
    check_unchanged(Stat(1, 0), Stat(1, 5))
    with pytest.raises(DataChanged):
        check_unchanged(Stat(1, 0), Stat(2, 5))
    with pytest.raises(DataChanged):
        check_unchanged(Stat(1, 4), Stat(1, 5))


def s3_literals(root: Path) -> list[str]:
    """String literals in code (not comments or prose) outside server/storage that
    name the s3:// scheme."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "storage" in path.relative_to(root).parts[:2]:
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        for tok in tokens:
            text = tok.string
            if tok.type == tokenize.STRING and " " not in text and "s3:" in text:
                found.append(f"{path.relative_to(root)}:{tok.start[0]}: {text}")
    return found


def test_no_s3_scheme_test_outside_storage(tmp_path):
    roots = [REPO / "server", REPO / "handlers"]
    assert [hit for root in roots for hit in s3_literals(root)] == []
    # the scan finds the kind of test the storage package replaced
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "x.py").write_text('ok = location.startswith("s3://")\n')
    assert s3_literals(tmp_path) == ['server/x.py:1: "s3://"']
