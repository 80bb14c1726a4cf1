"""A push parser for uncompressed tar: bytes are fed as they arrive, in order, and each member's data is handed on
as views of the bytes fed, never copied.

Why not `tarfile` in stream mode: it pulls from a file object and copies every byte two or three times through
its buffer while holding the interpreter lock. A release is read twice over (the release, and the bundle inside
it) while its upload arrives, on a device whose other core is decrypting that upload: those copies made the
upload itself a third slower (benchmarks/bench_update.py). Here the standard library still decodes every header
(`tarfile.TarInfo.frombuf`: checksums, numbers, ustar prefixes); this module only walks the blocks.

Releases and bundles hold plain files only: pax extended headers are read for the fields that place a member
(path, size), and any other kind of entry (links, directories, devices, GNU extensions, global or sparse
headers) is refused.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import Protocol

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_PAX_BYTES = 64 * 1024
_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE)


class TarFormatError(ValueError):
    """Not a tar this reader takes; the message says what was found."""


class MemberSink(Protocol):
    def write(self, data: memoryview) -> None: ...  # the next bytes of the member
    def close(self) -> None: ...  # all of them were written


def _padding(size: int) -> int:
    return -size % BLOCK


def parse_pax(data: bytes) -> dict[str, str]:
    """The records of a pax extended header: b"<length> <key>=<value>\\n" each, length counting the whole record."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 20)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        end = pos + length
        if length <= space - pos or end > len(data) or data[end - 1] != 0x0A:
            raise TarFormatError("a damaged pax extended header")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if not eq:
            raise TarFormatError("a damaged pax extended header")
        fields[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos = end
    if any(key.startswith("GNU.sparse") for key in fields):
        raise TarFormatError("a sparse member, which is not a plain file")
    return fields


class TarWalker:
    """Feed consecutive bytes of a tar; `open_member(name, size)` is called at each member's header and returns
    the sink its data is written to. At the end-of-archive block the walk stops and later bytes are ignored
    (`consumed` says where the archive ended, so a caller can judge what follows)."""

    def __init__(self, open_member: Callable[[str, int], MemberSink]) -> None:
        self._open_member = open_member
        self._header = bytearray()
        self._pax: bytearray | None = None  # the data of a pax header being read
        self._pax_fields: dict[str, str] | None = None  # what a pax header said of the member that follows it
        self._member: MemberSink | None = None
        self._left = 0  # data bytes still to come of the current entry
        self._pad = 0  # padding bytes still to skip after it
        self.ended = False
        self.consumed = 0  # bytes walked, up to and including the end-of-archive block once it is seen

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.consumed += len(view) - self._walk(view)

    def _walk(self, view: memoryview) -> int:
        """Walk `view`; how many of its bytes follow the end-of-archive block (none, unless it ended)."""
        while view and not self.ended:
            if self._left:
                take = view[:self._left]
                view = view[len(take):]
                self._left -= len(take)
                if self._pax is not None:
                    self._pax += take
                else:
                    self._member.write(take)
                if not self._left:
                    self._end_entry()
            elif self._pad:
                skip = min(self._pad, len(view))
                view = view[skip:]
                self._pad -= skip
            else:
                take = view[:BLOCK - len(self._header)]
                view = view[len(take):]
                self._header += take
                if len(self._header) == BLOCK:
                    block = bytes(self._header)
                    self._header.clear()
                    self._start_entry(block)
        return len(view)

    def _start_entry(self, block: bytes) -> None:
        if block == ZERO_BLOCK:
            self.ended = True  # the end-of-archive marker (tarfile also stops at the first zero block)
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise TarFormatError(f"a damaged tar header ({exc})") from None
        if info.type == tarfile.XHDTYPE:
            if self._pax_fields is not None:
                raise TarFormatError("two pax extended headers in a row")
            if info.size > MAX_PAX_BYTES:
                raise TarFormatError(f"a pax extended header of {info.size} bytes")
            self._pax, self._left, self._pad = bytearray(), info.size, _padding(info.size)
            if not info.size:
                self._end_entry()
            return
        fields, self._pax_fields = self._pax_fields or {}, None
        if info.type not in _PLAIN:
            raise TarFormatError(f"{fields.get('path', info.name)!r}, which is not a plain file")
        name = fields.get("path", info.name)
        try:
            size = int(fields.get("size", info.size))
        except ValueError:
            raise TarFormatError(f"{name!r} has a damaged size") from None
        if size < 0:
            raise TarFormatError(f"{name!r} has a damaged size")
        self._member = self._open_member(name, size)
        self._left, self._pad = size, _padding(size)
        if not size:
            self._end_entry()

    def _end_entry(self) -> None:
        if self._pax is not None:
            self._pax_fields = parse_pax(bytes(self._pax))
            self._pax = None
            return
        member, self._member = self._member, None
        member.close()

    def finish(self) -> None:
        """The bytes ended: that must be at the end of the archive, or between two members."""
        if not self.ended and (self._left or self._pad or self._header or self._pax is not None
                               or self._pax_fields is not None):
            raise TarFormatError("it ends in the middle of a member (cut short)")
