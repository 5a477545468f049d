import os

import pytest

from server.errors import DataChanged
from server.storage import Stat, for_location
from server.storage.local import LocalStorage


def test_reads_ranges_and_stats(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(200)))
    store = for_location(str(path))
    assert isinstance(store, LocalStorage)
    assert store.read(10, 5) == bytes(range(10, 15))
    assert store.read(195, 100) == bytes(range(195, 200))  # short at the end
    assert store.read_all() == bytes(range(200))
    st = os.stat(path)
    assert store.stat() == Stat(200, st.st_mtime_ns) == store.version()
    with store.open() as fh:
        fh.seek(100)
        assert fh.read(2) == bytes([100, 101])
        assert fh.fileno() >= 0  # the data plane reads by descriptor


def test_missing_file_and_directory_are_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        for_location(str(tmp_path / "gone.bam")).open()
    with pytest.raises(FileNotFoundError):
        for_location(str(tmp_path)).open()
    with pytest.raises(FileNotFoundError):
        for_location(str(tmp_path / "gone.bam")).stat()


def test_only_absolute_paths_are_locations():
    with pytest.raises(ValueError):
        LocalStorage("relative/file.bam")
    with pytest.raises(ValueError):
        LocalStorage("/data/../etc/passwd")


def test_the_node_serves_its_own_files(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    store = for_location(path)
    assert store.presigned_url(60) is None
    assert store.url(60, lambda: "https://node.example/data/file/1") == (
        "https://node.example/data/file/1"
    )


def test_unchanged_compares_the_file_now_with_its_registration(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    st = os.stat(path)
    registered = Stat(3, st.st_mtime_ns)
    assert for_location(path, registered=registered).unchanged() == registered
    path.write_bytes(b"abcd")
    with pytest.raises(DataChanged):
        for_location(path, registered=registered).unchanged()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DataChanged):  # same size, touched
        for_location(path, registered=Stat(4, st.st_mtime_ns)).unchanged()
    # an mtime not on record is not compared
    assert for_location(path, registered=Stat(4, 0)).unchanged().size == 4
