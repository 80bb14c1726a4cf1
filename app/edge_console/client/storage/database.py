"""The one way the console opens its database file: pragmas set, schema brought to this code's version.

A `ConsoleDatabase` is one SQLite connection (through sqlite-utils), and a connection belongs to the thread that
opened it. In the console, the store lane's `StoreWorker` owns one and the other stores on that lane (pins,
rollouts, audit heads) share it; a headless command or a test may give a store a path instead, and the store then
opens (and closes) its own through here.

Opening upgrades the file: the missing migrations of `schema.py` run in one transaction that holds SQLite's write
lock from its start (BEGIN IMMEDIATE), so a second console or command opening the same file waits for it, then
finds the work done. A migration that fails rolls the whole upgrade back: the file stays as it was.

A file from a newer console (a version this code does not know) is refused, not opened read-only: this code cannot
know what the newer tables mean or what a write must keep true in them, and a console that silently remembers
nothing is worse than one that says once what to do. Both errors are `sqlite3.DatabaseError`s, so every caller's
existing handling of an unusable file applies (the window's notice with its "start a fresh one" action; the
command line's one-line error).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import sqlite_utils

from edge_console.client.storage.schema import MIGRATIONS, Migration
from edge_console.core.errors import EdgeConsoleError

BUSY_TIMEOUT_MS = 5000  # what Python's sqlite3 waits by default for another connection's lock; set here on purpose


class UnknownSchemaVersion(EdgeConsoleError, sqlite3.DatabaseError):
    """The file's schema version is none this code knows: above them (a newer console wrote it) or below zero."""


class MigrationFailed(EdgeConsoleError, sqlite3.DatabaseError):
    """Upgrading the file's schema failed; the upgrade was rolled back and the file is as it was."""


class ConsoleDatabase:
    """One open connection to the console's database, at the schema version this code knows."""

    def __init__(self, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")  # the first read of the file: "not a database" shows here
            # FULL, as pins and rollouts always had: a committed pin or rollout step survives a power cut too (a
            # laptop's battery on a factory floor), not only a killed process. Writes are rare (a device seen, a step).
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.version = upgrade(self.conn, self.path, migrations)
        except BaseException:
            self.db.close()
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def table(self, name: str) -> sqlite_utils.db.Table:
        return self.db.table(name)

    def close(self) -> None:
        self.db.close()


def open_or_share(database: ConsoleDatabase | Path) -> tuple[ConsoleDatabase, bool]:
    """The connection a store uses, and whether the store owns it (closes it): a path is opened for the store
    alone; an open `ConsoleDatabase` is shared, and its owner closes it."""
    if isinstance(database, ConsoleDatabase):
        return database, False
    return ConsoleDatabase(database), True


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the migrations the file lacks, in one transaction; returns its version now (len(migrations))."""
    known = len(migrations)
    found = schema_version(conn)
    _refuse_newer(found, known, path)
    if found == known:
        return known
    conn.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write: no two upgrades interleave
    try:
        found = schema_version(conn)  # another console may have upgraded it while this one waited for the lock
        _refuse_newer(found, known, path)
        for version in range(found + 1, known + 1):
            migration = migrations[version - 1]
            try:
                migration.apply(conn)
                conn.execute(f"PRAGMA user_version = {version}")
            except sqlite3.Error as exc:
                raise MigrationFailed(
                    f"the console's database {path} could not be upgraded from schema version {found} to {version} "
                    f"({migration.summary}): {exc}. Nothing was changed: the file is still at version {found}. "
                    "Free disk space or fix its permissions if the error says so, then start the console again; "
                    "or move the file aside to start a fresh one.") from exc
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return known


def _refuse_newer(found: int, known: int, path: Path) -> None:
    if found < 0:
        raise UnknownSchemaVersion(f"the console's database {path} has schema version {found}, which no Edge "
                                   "Console writes, and is left untouched: move the file aside to start a fresh one.")
    if found > known:
        raise UnknownSchemaVersion(
            f"the console's database {path} was written by a newer Edge Console (schema version {found}; this one "
            f"knows versions up to {known}) and is left untouched: upgrade edge-console to use it, or move the file "
            "aside to start a fresh one with this version.")
