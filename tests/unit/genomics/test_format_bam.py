from pathlib import Path

from server.genomics import bgzf, format_bam, headers

TESTDATA = Path(__file__).resolve().parents[3].parent / "shared" / "testdata"
BAM = TESTDATA / "reads" / "htsnexus_test_NA12878.bam"


def first_record_block() -> tuple[bytes, int, int]:
    """The block where the records start, the offset of the first one, and n_ref."""
    with open(BAM, "rb") as fh:
        end, names, _ = headers.bam_header(fh)
        coffset, uoffset = bgzf.split_voffset(end)
        _, data = bgzf.read_block(fh, coffset)
    if uoffset == len(data):  # the header fills its block: records start in the next one
        with open(BAM, "rb") as fh:
            size, _ = bgzf.read_block(fh, coffset)
            _, data = bgzf.read_block(fh, coffset + size)
        uoffset = 0
    return data, uoffset, len(names)


def test_a_block_of_whole_records_is_recognised():
    data, first, n_ref = first_record_block()
    assert format_bam.ends_on_record(data, first, n_ref)
    assert format_bam.record_chain(data, first, len(data), n_ref)


def test_cut_or_damaged_records_are_not_a_chain():
    data, first, n_ref = first_record_block()
    assert not format_bam.record_chain(data, first, len(data) - 1, n_ref)  # cut short
    assert not format_bam.record_chain(data, first + 1, len(data), n_ref)  # shifted
    damaged = bytearray(data)
    damaged[first + 4 : first + 8] = (n_ref + 5).to_bytes(4, "little", signed=True)  # ref id
    assert not format_bam.record_chain(bytes(damaged), first, len(data), n_ref)
