"""The console's database schema (client/storage): versioned, upgraded in one transaction when opened, refused
when a newer console wrote it; and the store lane's one connection, shared by the stores on it."""

from __future__ import annotations

import queue
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from edge_console.client.releases.audit_merge import AuditHeads
from edge_console.client.releases.cli import main as edge_console
from edge_console.client.releases.db_lane import ReleaseDb
from edge_console.client.releases.rollout import Rollout, RolloutStore
from edge_console.client.runtime import ConsoleRuntime
from edge_console.client.storage import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ConsoleDatabase,
    Migration,
    MigrationFailed,
    UnknownSchemaVersion,
)
from edge_console.client.store import DeviceStore
from edge_console.client.trust_store import PinStore
from tests.support.console_databases import ALL_TABLES, CERTIFICATE, ROLLOUT_BODY, write_unversioned_database

WAIT_S = 30  # a guard against hanging, not a timing assertion


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def columns(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Each table's columns as (name, declared type, part of the primary key)."""
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: [(c[1], c[2], c[5]) for c in conn.execute(f'PRAGMA table_info("{name}")')] for name in names}


def test_the_schema_version_is_the_number_of_migrations_and_a_new_file_is_at_it(tmp_path):
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    database = ConsoleDatabase(tmp_path / "console.sqlite")
    assert database.version == SCHEMA_VERSION
    database.close()
    assert user_version(tmp_path / "console.sqlite") == SCHEMA_VERSION


def test_a_new_file_has_the_tables_the_unversioned_releases_made(tmp_path):
    write_unversioned_database(tmp_path / "old.sqlite")
    ConsoleDatabase(tmp_path / "new.sqlite").close()
    assert set(columns(tmp_path / "new.sqlite")) == set(ALL_TABLES)
    assert columns(tmp_path / "new.sqlite") == columns(tmp_path / "old.sqlite")


def test_a_file_from_before_versioning_upgrades_and_every_row_is_read_back(tmp_path):
    path = tmp_path / "console.sqlite"
    write_unversioned_database(path)
    before = columns(path)
    assert user_version(path) == 0

    devices = DeviceStore(path)
    (device,) = devices.all_devices()
    assert (device.id, device.port, device.manual, device.hardware, device.last_seen) == \
        ("dev-a", 8470, True, {"npu": "hailo-8"}, 200.0)
    pins = PinStore(path)
    pin = pins.get("dev-a")
    assert pin is not None and pin.certificate.decode() == CERTIFICATE and pin.role == "admin"
    rollouts = RolloutStore(path)
    assert rollouts.get("r1") == Rollout.from_dict(ROLLOUT_BODY)
    heads = AuditHeads(path)
    head = heads.get("dev-a")
    assert head is not None and (head.head, head.seq, head.seen_at) == ("cd" * 32, 7, 300.0)
    for store in (devices, pins, rollouts, heads):
        store.close()
    assert user_version(path) == SCHEMA_VERSION
    assert columns(path) == before  # its tables as they were: nothing rebuilt, nothing renamed


def test_a_file_with_some_tables_and_the_first_audit_heads_gains_what_it_lacks(tmp_path):
    path = tmp_path / "console.sqlite"
    write_unversioned_database(path, tables=("pins", "audit_heads"), signed_heads=False)
    heads = AuditHeads(path)
    head = heads.get("dev-a")
    assert head is not None and (head.head, head.seq) == ("cd" * 32, 0)  # 0: remembered before heads were numbered
    heads.set("dev-b", "ef" * 32, seq=3, signature="sig")
    heads.close()
    ConsoleDatabase(tmp_path / "fresh.sqlite").close()
    assert columns(path) == columns(tmp_path / "fresh.sqlite")
    devices = DeviceStore(path)
    assert devices.all_devices() == []  # the table it lacked, now there and empty
    devices.close()
    with closing(PinStore(path)) as pins:
        assert pins.get("dev-a") is not None


def test_a_file_from_a_newer_console_is_refused_with_what_to_do_and_left_untouched(tmp_path):
    path = tmp_path / "console.sqlite"
    ConsoleDatabase(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    for store in (DeviceStore, PinStore, RolloutStore, AuditHeads):
        with pytest.raises(UnknownSchemaVersion) as refused:
            store(path)
        assert isinstance(refused.value, sqlite3.DatabaseError)  # every caller's handling of an unusable file
        message = str(refused.value)
        assert "newer Edge Console" in message and f"schema version {SCHEMA_VERSION + 1}" in message
        assert "upgrade edge-console" in message and "move the file aside" in message
    assert path.read_bytes() == before and user_version(path) == SCHEMA_VERSION + 1


def test_a_negative_schema_version_is_refused(tmp_path):
    path = tmp_path / "console.sqlite"
    ConsoleDatabase(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = -2")
    conn.close()
    with pytest.raises(UnknownSchemaVersion, match="no Edge Console writes"):
        ConsoleDatabase(path)


def test_the_command_line_says_so_in_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    ConsoleDatabase(data / "console.sqlite").close()
    with sqlite3.connect(data / "console.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    assert edge_console(["--data-dir", str(data), "release", "list"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("edge-console: error: the console's database") and "newer Edge Console" in error
    assert "\n" not in error and "Traceback" not in error


def test_the_window_is_told_once_and_offered_a_fresh_file(tmp_path):
    path = tmp_path / "console.sqlite"
    ConsoleDatabase(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    problems: queue.Queue[tuple[str, bool]] = queue.Queue()
    runtime = ConsoleRuntime(lambda fn, *args: fn(*args), path,
                             on_store_problem=lambda message, resettable: problems.put((message, resettable)))
    runtime.start()
    try:
        message, resettable = problems.get(timeout=WAIT_S)
    finally:
        runtime.close()
    assert resettable and "newer Edge Console" in message and "upgrade edge-console" in message
    assert problems.empty()


FAILING_STEP = Migration("a step that breaks half-way",
                         lambda conn: (conn.execute('CREATE TABLE "half_done" (x)'),
                                       conn.execute('ALTER TABLE "no_such_table" ADD COLUMN "y" TEXT')))


def test_an_upgrade_that_fails_half_way_leaves_a_file_from_before_versioning_as_it_was(tmp_path):
    path = tmp_path / "console.sqlite"
    write_unversioned_database(path, tables=("pins", "audit_heads"), signed_heads=False)
    before = columns(path)
    with pytest.raises(MigrationFailed) as failed:
        ConsoleDatabase(path, migrations=(*MIGRATIONS, FAILING_STEP))
    message = str(failed.value)
    assert f"from schema version 0 to {SCHEMA_VERSION + 1}" in message and "a step that breaks half-way" in message
    assert "no_such_table" in message and "still at version 0" in message
    # Version 1 ran first in the same transaction (tables made, audit_heads widened): all of it is undone too.
    assert columns(path) == before and user_version(path) == 0
    pins = PinStore(path)  # and the code that knows only the real migrations upgrades it as usual
    assert pins.get("dev-a") is not None
    pins.close()
    assert user_version(path) == SCHEMA_VERSION


def test_an_upgrade_that_fails_keeps_a_versioned_file_at_its_version_with_its_rows(tmp_path):
    path = tmp_path / "console.sqlite"
    rollouts = RolloutStore(path)
    rollouts.save(Rollout.from_dict(ROLLOUT_BODY))
    rollouts.close()
    with pytest.raises(MigrationFailed, match=f"still at version {SCHEMA_VERSION}"):
        ConsoleDatabase(path, migrations=(*MIGRATIONS, FAILING_STEP))
    assert "half_done" not in columns(path) and user_version(path) == SCHEMA_VERSION
    with closing(RolloutStore(path)) as kept:
        assert kept.get("r1") == Rollout.from_dict(ROLLOUT_BODY)


def test_the_stores_on_the_lane_share_its_connection_and_follow_it_to_a_fresh_file(tmp_path):
    """Before, the release views kept their own connections; after the window moved the file aside for a fresh
    one, their rollouts went on being written into the file moved aside."""
    path = tmp_path / "console.sqlite"
    runtime = ConsoleRuntime(lambda fn, *args: fn(*args), path).start()
    release_db = ReleaseDb(runtime.store, runtime.tasks)
    try:
        first = Rollout.from_dict(ROLLOUT_BODY)
        shared = release_db.submit(lambda db: (db.rollouts().database, db.heads().database,
                                               runtime.store.database())).result(WAIT_S)
        assert shared[0] is shared[1] is shared[2]
        release_db.submit(lambda db: db.rollouts().save(first)).result(WAIT_S)
        moved: queue.Queue[Path | None] = queue.Queue()
        runtime.store.reset(moved.put)
        aside = moved.get(timeout=WAIT_S)
        second = Rollout.from_dict({**ROLLOUT_BODY, "id": "r2"})
        release_db.submit(lambda db: db.rollouts().save(second)).result(WAIT_S)
        assert release_db.submit(lambda db: [r.id for r in db.rollouts().all()]).result(WAIT_S) == ["r2"]
    finally:
        release_db.close()
        runtime.close()
    assert aside is not None
    with closing(RolloutStore(aside)) as old, closing(RolloutStore(path)) as fresh:
        assert [r.id for r in old.all()] == ["r1"] and [r.id for r in fresh.all()] == ["r2"]
