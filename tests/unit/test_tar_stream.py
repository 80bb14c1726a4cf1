"""core/releases/tar_stream.py, the push parser a device reads releases with while they arrive: for every tar the standard
library writes in the formats releases use, fed in any chunking, it finds the members tarfile finds with the same
bytes; everything else (links, directories, GNU extensions, damage, a cut) is refused with a reason."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_console.core.releases.tar_stream import TarFormatError, TarWalker

NAMES = st.text("abcxyz0123456789_.-", min_size=1, max_size=30)
LONG_NAMES = st.builds(lambda parts: "/".join(parts), st.lists(NAMES, min_size=1, max_size=8))  # up to ~250 chars


class Recorder:
    def __init__(self) -> None:
        self.members: list[tuple[str, bytes]] = []

    def open(self, name: str, size: int):
        recorder = self
        data = bytearray()

        class Sink:
            def write(self, view) -> None:
                data.extend(view)

            def close(self) -> None:
                assert len(data) == size
                recorder.members.append((name, bytes(data)))

        return Sink()


def make_tar(members: list[tuple[str, bytes]], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000.25  # a fractional mtime makes pax write a header
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def walk(data: bytes, cuts: list[int]) -> list[tuple[str, bytes]]:
    recorder = Recorder()
    walker = TarWalker(recorder.open)
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        walker.feed(data[start:cut])
        start = cut
    walker.finish()
    return recorder.members


def by_tarfile(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


@settings(max_examples=150, deadline=None)
@given(members=st.lists(st.tuples(LONG_NAMES, st.binary(max_size=3000)), max_size=6),
       cuts=st.lists(st.integers(0, 40_000), max_size=12))
def test_pax_tars_read_as_tarfile_reads_them_in_any_chunking(members, cuts):
    data = make_tar(members, tarfile.PAX_FORMAT)  # long names go in pax headers
    assert walk(data, cuts) == by_tarfile(data)


@settings(max_examples=60, deadline=None)
@given(members=st.lists(st.tuples(NAMES, st.binary(max_size=2000)), max_size=5),
       fmt=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT]),
       cuts=st.lists(st.integers(0, 20_000), max_size=8))
def test_ustar_and_gnu_tars_with_plain_names_read_the_same(members, fmt, cuts):
    data = make_tar(members, fmt)
    assert walk(data, cuts) == by_tarfile(data)


def test_a_ustar_prefix_is_part_of_the_name():
    name = "golden/" + "d" * 90 + "/" + "f" * 60 + ".png"  # longer than 100: split into prefix and name
    data = make_tar([(name, b"x")], tarfile.USTAR_FORMAT)
    assert walk(data, [7]) == [(name, b"x")]


def _entry(kind: bytes, name: str = "x") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE,
                                  tarfile.CHRTYPE, tarfile.CONTTYPE])
def test_anything_but_plain_files_is_refused(kind):
    with pytest.raises(TarFormatError, match="not a plain file"):
        walk(_entry(kind), [])


def test_gnu_long_names_are_refused():
    with pytest.raises(TarFormatError, match="not a plain file"):
        walk(make_tar([("n" * 150, b"data")], tarfile.GNU_FORMAT), [])


def test_a_damaged_header_is_refused_with_the_reason():
    data = bytearray(make_tar([("a.bin", b"data")], tarfile.USTAR_FORMAT))
    data[10] ^= 0xFF  # in the name: the checksum no longer holds
    with pytest.raises(TarFormatError, match="damaged tar header"):
        walk(bytes(data), [])


@pytest.mark.parametrize("keep", [100, 512, 700, 1024 + 1])
def test_a_tar_cut_short_is_refused(keep):
    data = make_tar([("a.bin", b"d" * 600), ("b.bin", b"e")], tarfile.USTAR_FORMAT)
    with pytest.raises(TarFormatError, match="cut short"):
        walk(data[:keep], [])


def test_bytes_after_the_end_marker_are_ignored_and_a_tar_may_lack_it():
    data = make_tar([("a.bin", b"abc")], tarfile.USTAR_FORMAT)
    assert walk(data + b"\xff" * 3000, [5]) == [("a.bin", b"abc")]
    assert walk(data[:1024], []) == [("a.bin", b"abc")]  # header and padded data, no end blocks


@pytest.mark.parametrize("pax", [b"9 path\n", b"30 path=x\n", b"x" * 40, b"12 size=-5\n"])
def test_a_damaged_pax_header_is_refused(pax):
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(pax)
    member = tarfile.TarInfo("a.bin")
    data = (header.tobuf(tarfile.USTAR_FORMAT) + pax + bytes(-len(pax) % 512) + member.tobuf(tarfile.USTAR_FORMAT)
            + bytes(1024))
    with pytest.raises(TarFormatError):
        walk(data, [])
