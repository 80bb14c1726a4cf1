"""The one atomic-write helper: permissions as `open()` would give them (a secret 0600 from its first byte), and
nothing left behind when the write cannot finish. (Crashes mid-way: tests/releases/test_release_trust_install.py.)"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from edge_console.core.atomic_files import file_sha256, recover_folder, replace_folder, write_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_gets_the_mode_open_gives_it_and_a_secret_only_its_owners(tmp_path, umask_022):
    plain, secret = tmp_path / "SHA256SUMS", tmp_path / "pairings.json"
    write_atomic(plain, b"shared")
    write_atomic(secret, b"key", mode=0o600)
    assert _mode(plain) == 0o644  # a kit's checksums or a release file stay readable by the site's other users
    assert _mode(secret) == 0o600
    write_atomic(secret, b"new key", mode=0o600)
    assert secret.read_bytes() == b"new key" and _mode(secret) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SHA256SUMS", "pairings.json"]
    assert file_sha256(plain) == hashlib.sha256(b"shared").hexdigest()


def test_a_write_that_cannot_finish_leaves_the_old_content_and_no_temporary_file(tmp_path):
    taken = tmp_path / "entry.json"
    taken.mkdir()  # a folder where the file should go: the final rename fails
    (taken / "inside").write_bytes(b"kept")
    with pytest.raises(OSError):
        write_atomic(taken, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.json"]
    assert (taken / "inside").read_bytes() == b"kept"


def test_a_folder_is_replaced_whole_and_a_failed_fill_changes_nothing(tmp_path):
    target = tmp_path / "trust"
    replace_folder(target, lambda new: (new / "root.json").write_bytes(b"one"))
    (target / "history").mkdir()
    (target / "history" / "1.json").write_bytes(b"old history")

    def fails(new):
        (new / "root.json").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_folder(target, fails)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust"]  # nothing half-written is left beside it
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == \
        ["history", "history/1.json", "root.json"]
    replace_folder(target, lambda new: (new / "root.json").write_bytes(b"two"))
    assert [p.name for p in target.iterdir()] == ["root.json"] and (target / "root.json").read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust"] and not recover_folder(target)
