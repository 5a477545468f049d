"""The Beacon loaders' input: a VCF or BCF read once, from a path or a stream.

``open_source(path)`` reads a file; ``open_source(label, stream)`` reads
the bytes of a binary reader once, from start to end, and never seeks it:
a Crypt4GH file decrypted in memory (``server.storage.crypt4gh``) or a
pipe. Nothing is written anywhere, so a controlled file is loaded without
its plaintext reaching a disk.

Either way the header and the records come from one reader:

* **VCF** (BGZF, gzip or plain text): raw lines as bytes, the header lines
  included, through htslib's BGZF reader for a path and Python's ``gzip``
  for a stream; the header is parsed by htslib from those lines (sent to
  ``pysam.VariantFile`` through a pipe), so it is read as ``bcftools``
  reads it;
* **BCF**: ``pysam.VariantFile`` over the path, or over a pipe that a thread
  fills from the stream (htslib reads a pipe without seeking it, and lets go
  of the GIL while it waits); records are handed on as VCF text.

A stream is hashed (sha-256) as it is read: ``Source.finish()`` reads what
the parser left (nothing, for a well-formed file) and returns the digest,
which the loader compares with the checksum it was given.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pysam

from server.beacon.journal import LoadError

HEAD = 1 << 16  # bytes read first to tell the format (a BGZF block is at most 64 KiB)
CHUNK = 1 << 20
_DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile)


class _Hashing(io.RawIOBase):
    """A reader of ``inner`` that hashes every byte it passes on."""

    def __init__(self, inner: BinaryIO):
        self.inner, self.sha = inner, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.inner.read(len(buf))
        n = len(data)
        buf[:n] = data
        self.sha.update(data)
        return n


class _Prefixed(io.RawIOBase):
    """``head`` (bytes already read), then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: io.RawIOBase):
        self.head, self.inner = memoryview(head), inner

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.inner.readinto(buf)


def _read_head(raw: io.RawIOBase) -> bytes:
    """Up to ``HEAD`` bytes (a pipe may hand them over in pieces)."""
    out = bytearray()
    while len(out) < HEAD:
        piece = raw.read(HEAD - len(out))
        if not piece:
            break
        out += piece
    return bytes(out)


def _is_bcf(head: bytes) -> bool:
    if head[:2] != b"\x1f\x8b":
        return False
    try:
        return zlib.decompressobj(31).decompress(head, 5).startswith(b"BCF\x02")
    except zlib.error:
        return False


@contextlib.contextmanager
def _quiet_htslib():
    """htslib looks for an index beside a file it opens; a pipe has none, and the
    message saying so would only alarm whoever reads the worker's log."""
    old = pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(old)


class _Pipe:
    """An ``os.pipe`` a thread fills from ``chunks``; its read end as a path
    htslib opens (``/dev/fd/N``)."""

    def __init__(self, chunks: Iterator[bytes]):
        self.read_fd, write_fd = os.pipe()
        self.error: BaseException | None = None
        self.done = False

        def feed() -> None:
            try:
                with os.fdopen(write_fd, "wb") as out:
                    for chunk in chunks:
                        out.write(chunk)
                self.done = True
            except BrokenPipeError:
                pass  # the reader stopped early (an error, an interruption)
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                self.error = exc

        self.thread = threading.Thread(target=feed, name="beacon-source", daemon=True)
        self.thread.start()

    @property
    def path(self) -> str:
        return f"/dev/fd/{self.read_fd}"

    def close(self) -> None:
        if self.read_fd >= 0:
            os.close(self.read_fd)  # a writer still blocked gets EPIPE and stops
            self.read_fd = -1
        self.thread.join()


def header_from_text(p: Path, text: bytes) -> pysam.VariantHeader:
    """A VCF header, parsed by htslib from its lines."""
    pipe = _Pipe(iter([text]))
    try:
        with _quiet_htslib(), pysam.VariantFile(pipe.path) as vf:
            return vf.header.copy()
    except (OSError, ValueError) as exc:
        raise LoadError(p, "header", f"not a VCF header htslib can read: {exc}") from None
    finally:
        pipe.close()


class Source:
    """One VCF/BCF being read: ``format`` (VCF or BCF), ``header`` (pysam's),
    ``lines`` (``(line or record number, raw bytes)`` of each record)."""

    format: str
    header: pysam.VariantHeader
    lines: Iterator[tuple[int, bytes]]

    def __init__(self, p: Path, stream: BinaryIO | None = None):
        self.p = p
        self._hashing: _Hashing | None = None
        self._pipe: _Pipe | None = None
        self._closers: list = []
        if stream is None:
            self._open_path(p)
        else:
            self._open_stream(stream)

    # ------------------------------------------------------------ a path
    def _open_path(self, p: Path) -> None:
        with open(p, "rb") as fh:
            head = fh.read(HEAD)
        if _is_bcf(head):
            self._bcf(str(p))
            return
        try:
            fh = pysam.BGZFile(str(p), "rb")
        except OSError as exc:
            raise LoadError(p, "file", f"not a VCF/BCF pysam can read: {exc}") from None
        self._closers.append(fh.close)
        self._vcf(fh.readline)

    # ------------------------------------------------------------ a stream
    def _open_stream(self, stream: BinaryIO) -> None:
        self._hashing = _Hashing(stream)
        head = _read_head(self._hashing)
        raw = _Prefixed(head, self._hashing)
        if _is_bcf(head):

            def chunks() -> Iterator[bytes]:
                while chunk := raw.read(CHUNK):
                    yield chunk

            self._pipe = _Pipe(chunks())
            self._closers.append(self._pipe.close)
            self._bcf(self._pipe.path)
            return
        buffered = io.BufferedReader(raw, CHUNK)
        text = gzip.GzipFile(fileobj=buffered, mode="rb") if head[:2] == b"\x1f\x8b" else buffered
        self._closers.append(text.close)
        self._vcf(text.readline)

    # ------------------------------------------------------------ the formats
    def _bcf(self, location: str) -> None:
        try:
            with _quiet_htslib():
                vf = pysam.VariantFile(location)
        except (OSError, ValueError) as exc:
            raise LoadError(self.p, "file", f"not a VCF/BCF pysam can read: {exc}") from None
        self._closers.append(vf.close)
        self.format, self.header = "BCF", vf.header
        self.lines = ((n, str(rec).encode()) for n, rec in enumerate(vf, start=1))

    def _vcf(self, readline) -> None:
        header, n = [], 0
        while True:
            raw = self._readline(readline, n)
            if not raw:
                break
            n += 1
            header.append(raw.rstrip(b"\r\n") + b"\n")  # htslib's reader strips the newline
            if not raw.startswith(b"##"):
                break
        if not header or not header[0].startswith(b"##fileformat=VCF"):
            raise LoadError(self.p, "file", "not a VCF/BCF pysam can read (no ##fileformat=VCF)")
        if not header[-1].startswith(b"#CHROM"):
            raise LoadError(self.p, "header", "no #CHROM line ends the VCF header")
        self.format = "VCF"
        self.header = header_from_text(self.p, b"".join(header))
        self.lines = self._records(readline, n)

    def _readline(self, readline, n: int) -> bytes:
        try:
            return readline()
        except (*_DAMAGED, OSError) as exc:
            raise LoadError(
                self.p, f"line {n + 1}", f"the compressed file is damaged or truncated ({exc})"
            ) from None

    def _records(self, readline, n: int) -> Iterator[tuple[int, bytes]]:
        while raw := self._readline(readline, n):
            n += 1
            if raw[:1] != b"#":
                yield n, raw

    # ------------------------------------------------------------ the end
    def finish(self) -> str | None:
        """The sha-256 of a stream read to its end (None for a path)."""
        if self._hashing is None:
            return None
        if self._pipe is not None:
            self._pipe.thread.join()
            if self._pipe.error is not None:
                raise self._pipe.error
        while self._hashing.read(CHUNK):
            pass
        return self._hashing.sha.hexdigest()

    def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(OSError, ValueError):
                close()
        self._closers = []

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(p: Path, stream: BinaryIO | None = None) -> Source:
    return Source(p, stream)
