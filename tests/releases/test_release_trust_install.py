"""Installing release trust is all or nothing: a process killed at any step of it leaves, once the folder is next
used, wholly the old trust (TUF's accepted metadata and root history included) or wholly the new root.

The old trust is what a device holds after a real update (a real signed release checked by TUF's workflow); the
new root is another authority's. The install runs in a forked process that dies (os._exit, no cleanup, no
`finally`) just before its Nth step that changes the disk, seen through Python's audit hooks: every mkdir, file
opened for writing, rename, removal. N goes up until the install finishes untouched.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.client.releases.library import ReleaseLibrary
from edge_console.core.paths import demo_model
from edge_console.core.releases.stream import stage_release, verify_staged
from edge_console.core.releases.trust import install_root, recover_trust, trusted_root
from tests.support.updates import build, signed_release

CRASHED = 70  # the child's exit status when it died at the step it was told to
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.symlink"}


@pytest.fixture(scope="module")
def trusts(tmp_path_factory):
    base = tmp_path_factory.mktemp("trust-install")
    old, new = ReleaseAuthority.create(base / "old"), ReleaseAuthority.create(base / "new")
    bundle = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(base / "golden", count=2), base)
    release = signed_release(old, bundle, base / "parts.edgerelease")
    return {"base": base, "old": old, "new_root": new.root_json(), "release": release}


def _device_trust(trusts, state: Path) -> Path:
    """A trust folder as a device has it after an update: root, root history, targets, snapshot, timestamp."""
    trust_dir = state / "release-trust"
    install_root(trust_dir, trusts["old"].root_json())
    with open(trusts["release"], "rb") as source:
        staged = stage_release(source, state / "staged")
    verify_staged(trust_dir, staged)
    return trust_dir


def _contents(folder: Path) -> dict[str, object]:
    """Every entry below `folder`: a file's bytes, a link's target (TUF's root.json is a link into root_history/)."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): os.readlink(p) if p.is_symlink() else p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


def _install_dying_at(step: int, trust_dir: Path, root_json: bytes) -> int:
    """Fork; the child installs `root_json` and dies just before its `step`th change to the disk. Its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        seen = 0

        def die_at_step(event: str, args: tuple) -> None:
            nonlocal seen
            changes = event in _CHANGES or (event == "open" and len(args) > 2 and isinstance(args[2], int)
                                            and args[2] & _WRITING)
            if changes:
                seen += 1
                if seen == step:
                    os._exit(CRASHED)

        try:
            sys.addaudithook(die_at_step)
            install_root(trust_dir, root_json)
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any other outcome is a failure the parent reports
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_crash_at_any_step_of_a_trust_install_leaves_the_old_trust_or_the_new(trusts, tmp_path):
    new_root = trusts["new_root"]
    outcomes = []
    for step in range(1, 200):
        state = tmp_path / f"crash-{step}"
        trust_dir = _device_trust(trusts, state)
        old = _contents(trust_dir)
        assert {"root.json", "root_history/1.root.json", "timestamp.json", "snapshot.json", "targets.json"} <= set(old)
        code = _install_dying_at(step, trust_dir, new_root)
        assert code in (CRASHED, 0), f"the install failed at step {step} for another reason (exit {code})"
        recover_trust(trust_dir)  # what the agent and the console do at start-up
        found = _contents(trust_dir)
        assert found in (old, {"root.json": new_root}), f"a mix after a crash at step {step}: {sorted(found)}"
        assert sorted(p.name for p in state.iterdir()) == [".release-trust.lock", "release-trust", "staged"], \
            f"something left beside the trust folder after a crash at step {step}"
        outcomes.append("old" if found == old else "new")
        if code == 0:
            break
    else:
        pytest.fail("the install never finished")
    assert outcomes[-1] == "new" and outcomes[0] == "old" and len(outcomes) > 5, outcomes
    # Only one switch: every crash before the install's own rename gives the old trust, every one after, the new.
    assert outcomes == sorted(outcomes, key=["old", "new"].index), outcomes


def test_what_reads_the_trust_first_finishes_a_cut_install(trusts, tmp_path):
    """A crash between the two renames leaves no folder under the trust's name; the next reader (here the
    console's release library at start-up, then `trusted_root`) puts the old trust back before reading it."""
    state = tmp_path / "state"
    trust_dir = _device_trust(trusts, state)
    old = _contents(trust_dir)
    step = 1
    while _install_dying_at(step, trust_dir, trusts["new_root"]) == CRASHED and trust_dir.exists():
        recover_trust(trust_dir)
        step += 1
    assert not trust_dir.exists(), "no step of the install leaves the trust folder renamed away"
    assert trusted_root(trust_dir).to_bytes() == trusts["old"].roots()[-1].to_bytes()
    assert _contents(trust_dir) == old
    # The same cut, then the console's library opened on that data folder: its trust is the old one, whole.
    assert _install_dying_at(step, trust_dir, trusts["new_root"]) == CRASHED and not trust_dir.exists()
    library = ReleaseLibrary(state)
    assert library.trusted and _contents(trust_dir) == old
