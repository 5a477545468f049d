from server.genomics.pieces import LRU, ByteRange, Inline, join_pieces, read_pieces


def test_join_merges_touching_ranges_and_inline_runs_and_drops_empty_pieces():
    pieces = [
        ByteRange(0, 10),
        ByteRange(10, 20),
        ByteRange(20, 20),
        Inline(b"a"),
        Inline(b""),
        Inline(b"b"),
        ByteRange(30, 40),
        ByteRange(41, 50),
    ]
    assert join_pieces(pieces) == [
        ByteRange(0, 20),
        Inline(b"ab"),
        ByteRange(30, 40),
        ByteRange(41, 50),
    ]


def test_read_pieces_joins_file_bytes_and_inline_bytes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert read_pieces(path, [ByteRange(2, 4), Inline(b"-"), ByteRange(8, 10)]) == b"23-89"


def test_lru_drops_the_least_recently_used():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
