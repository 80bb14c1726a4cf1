"""Staging a release while its upload arrives, so that little is left to do when the console asks to install it.

The bytes an upload writes to its .part file are also handed, in the same order, to a thread feeding a
`ReleaseStager` (core/releases/stream.py: the one pass that unpacks the release and hashes its bundle and every
member, exactly as a release file is staged). At the last byte the same thread runs TUF's check of the signed
metadata against a copy of the device's trust (core/releases/preverify.py), while the console's request to
install is on its way; the update then finds its release staged and checked.

The follower is only an optimisation, never a second source of truth: it sees exactly the bytes written at the
offsets written, in order; anything that breaks that (a PATCH superseded after writing, a write error, the agent
restarting, an upload resumed at an offset the follower has not seen) abandons it, and the release is staged from
the finished .part file as before. Its verdict on a release (not a readable release, a member that does not
match its manifest) is a verdict on the same bytes, and stands. Measured in benchmarks/bench_update.py.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import shutil
import threading
from pathlib import Path

from edge_console.core.releases.preverify import preverify
from edge_console.core.releases.stream import ReleaseStager, StagedRelease

log = logging.getLogger(__name__)
PIPE_LIMIT = 4 * 2**20  # the writer waits when the stager is this far behind (memory stays bounded)


class FollowAbandoned(Exception):
    """The follower stopped before the end of the upload; stage from the file instead."""


class _BytePipe:
    """Blocking bytes, in order, from the upload's writer thread to the stager's thread."""

    def __init__(self) -> None:
        self._chunks: collections.deque[memoryview] = collections.deque()
        self._size = 0
        self._ended = False
        self._abandoned = False
        self._reader_done = False
        self._ready = threading.Condition()

    def put(self, data: bytes) -> None:
        with self._ready:
            while self._size > PIPE_LIMIT and not (self._abandoned or self._reader_done):
                self._ready.wait()
            if self._abandoned or self._reader_done:
                return
            self._chunks.append(memoryview(data))
            self._size += len(data)
            self._ready.notify_all()

    def end(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify_all()

    def abandon(self) -> None:
        with self._ready:
            self._abandoned = True
            self._chunks.clear()
            self._ready.notify_all()

    def stop_reading(self) -> None:
        """The reader has finished: what is put from now on is dropped, never waited for."""
        with self._ready:
            self._reader_done = True
            self._chunks.clear()
            self._size = 0
            self._ready.notify_all()

    def next_chunk(self) -> memoryview | None:
        """The next bytes, as they were put (None at the end)."""
        with self._ready:
            while not self._chunks and not self._ended and not self._abandoned:
                self._ready.wait()
            if self._abandoned:
                raise FollowAbandoned
            if not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._size -= len(chunk)
            self._ready.notify_all()
        return chunk


class UploadFollower:
    """Stages one upload's release from its bytes as they are written (see the module docstring)."""

    def __init__(self, folder: Path, length: int, trust_dir: Path | None = None) -> None:
        self.folder = folder
        self.length = length
        self.trust_dir = trust_dir
        self.fed = 0  # bytes handed over so far: the offset the follower has reached
        self.broken = False
        self._pipe = _BytePipe()
        self._result: StagedRelease | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._stage, name=f"stage-{folder.name}", daemon=True)
        self._thread.start()

    def _stage(self) -> None:
        try:
            stager = ReleaseStager(self.folder)
            while (chunk := self._pipe.next_chunk()) is not None:
                stager.feed(chunk)
            staged = stager.finish()
            if self.trust_dir is not None and staged.manifest is not None and not staged.problem:
                staged = dataclasses.replace(staged, preverified=preverify(
                    self.trust_dir, staged.folder, staged.bundle_name, staged.bundle_length, staged.bundle_sha256))
            self._result = staged
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the result
            self._error = exc
            if isinstance(exc, FollowAbandoned):
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            self._pipe.stop_reading()  # a release may end before its file does: the rest is not waited for

    def feed_at(self, offset: int, data: bytes) -> None:
        """The bytes just written at `offset` (the upload's writer thread). Bytes that do not continue what was
        fed (an offset rewound or skipped) break the follower for good."""
        if self.broken:
            return
        if offset != self.fed:
            self.abandon()
            return
        self._pipe.put(data)
        self.fed += len(data)
        if self.fed >= self.length:
            self._pipe.end()

    def abandon(self) -> None:
        """Stop following (any thread, without waiting): the stager thread ends and removes its folder."""
        self.broken = True
        self._pipe.abandon()
        if not self._thread.is_alive():  # finished already: nobody else removes what it staged
            shutil.rmtree(self.folder, ignore_errors=True)

    def result(self, timeout: float = 60.0) -> StagedRelease:
        """The staged release (its folder now belongs to the caller); raises the stager's verdict, or
        FollowAbandoned when the file must be staged instead."""
        if self.broken or self.fed != self.length:
            self.abandon()
            raise FollowAbandoned
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.abandon()
            raise FollowAbandoned
        if self._error is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            if isinstance(self._error, FollowAbandoned | OSError):
                raise FollowAbandoned from self._error
            raise self._error
        return self._result
