"""The update path's state machines (agent/updates/_states.py), walked whole through the code that enforces them:
every transition a table allows succeeds and is persisted, every other raises InvalidTransition and changes
nothing, on disk or in memory. Then files written by older versions, start-up recovery as table transitions, and
the model store's move of a staged bundle (a rename, not a copy; a copy across filesystems)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from edge_console.agent.updates._lifecycle import MIN_RESUMED_PROBATION_S, ModelLifecycle, factory_entry
from edge_console.agent.updates._model_store import Lifecycle, ModelStore, StoredModel
from edge_console.agent.updates._records import UpdateRecord, UpdateRecords, recovery_step
from edge_console.agent.updates._states import FACTORY, GOOD, LIFECYCLE_TRANSITIONS, PROBATION, RECORD_TRANSITIONS
from edge_console.core.audit.log import AuditLog
from edge_console.core.protocol import UPDATE_FINAL, UPDATE_IN_PROGRESS, UPDATE_ON_PROBATION, UPDATE_STEPS
from edge_console.core.state_machine import InvalidTransition

NOT_A_STATE = "installing"  # a name neither table knows


# -- update records ---------------------------------------------------------------------------------------------------
def test_the_record_table_uses_the_protocols_steps_and_final_steps_lead_nowhere():
    assert set(RECORD_TRANSITIONS) == set(UPDATE_STEPS)
    assert all(RECORD_TRANSITIONS[final] == frozenset() for final in UPDATE_FINAL)
    assert all(RECORD_TRANSITIONS[step] for step in (*UPDATE_IN_PROGRESS, UPDATE_ON_PROBATION))
    targets = set().union(*RECORD_TRANSITIONS.values())
    assert targets <= set(UPDATE_STEPS) and targets | {"staged"} == set(UPDATE_STEPS)  # every step is reachable


@pytest.mark.parametrize("from_step", sorted(RECORD_TRANSITIONS))
def test_every_record_transition_the_table_allows_succeeds_and_every_other_raises(tmp_path, from_step):
    events: list[dict] = []
    records = UpdateRecords(tmp_path / "updates", events.append)
    for n, to_step in enumerate([*sorted(RECORD_TRANSITIONS), NOT_A_STATE]):
        record = UpdateRecord(f"r{n}", from_step, "upload", "test", release="r.edgerelease")
        records.save(record)
        before = records.get(record.id).to_dict()
        if to_step in RECORD_TRANSITIONS[from_step]:
            records.step(record, to_step, "why")
            assert record.state == to_step and records.get(record.id).state == to_step
            assert record.steps[-1]["state"] == to_step and events[-1]["state"] == to_step
            assert record.reason == ("why" if to_step in ("rejected", "interrupted", "rolled_back") else "")
        else:
            published = len(events)
            with pytest.raises(InvalidTransition) as raised:
                records.step(record, to_step, "why")
            assert f"from {from_step!r} to {to_step!r}" in str(raised.value)
            assert record.to_dict() == before and records.get(record.id).to_dict() == before  # nothing changed
            assert len(events) == published  # and nothing was told


def test_a_new_record_starts_staged_and_a_final_one_says_so_when_moved(tmp_path):
    records = UpdateRecords(tmp_path / "updates", lambda _event: None)
    record = records.new("usb", "device terminal", "parts.edgerelease")
    assert record.state == "staged" and records.get(record.id).steps[0]["state"] == "staged"
    records.step(record, "rejected", "not signed")
    with pytest.raises(InvalidTransition, match="'rejected' is final"):
        records.step(record, "active")


def test_start_up_recovery_only_takes_transitions_from_the_table_and_ends_each_record():
    """Whatever the lifecycle says, recovery_step moves a record along its table until nothing is left to do:
    a record in progress ends interrupted unless its model was switched to; an active one stays while its
    model is on probation, else ends good (it runs) or rolled_back."""
    for step, switched, on_probation, running in itertools.product(
            RECORD_TRANSITIONS, [False, True], [False, True], [False, True]):
        record = UpdateRecord("r", step, "upload", "test", line="parts", version="2.0.0")
        path = [step]
        while (to := recovery_step(record, switched, on_probation, running)) is not None:
            assert to in RECORD_TRANSITIONS[record.state], (path, to)
            record.state = to
            path.append(to)
            assert len(path) < 5, path
        if step in UPDATE_IN_PROGRESS:
            assert path[1] == ("active" if switched and step == "checked" else "interrupted"), path
        if record.state == "active":
            assert on_probation, path
        else:
            assert record.state in UPDATE_FINAL, path
        if path[-1] in ("good", "rolled_back") and len(path) > 1:
            assert path[-1] == ("good" if running else "rolled_back"), path


def test_records_written_by_other_versions_still_load(tmp_path):
    """A step this agent does not know (a newer agent's, after a downgrade) reads as interrupted, its history
    kept as written; a field it does not know is left out."""
    records = UpdateRecords(tmp_path / "updates", lambda _event: None)
    folder = tmp_path / "updates" / "20260101-000000-abcdef"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({
        "id": folder.name, "state": "installing", "source": "upload", "actor": "console", "release": "r",
        "steps": [{"state": "installing", "at": 1.0, "note": ""}], "created_at": 1.0, "signed_by": "someone"}))
    record = records.get(folder.name)
    assert record.state == "interrupted" and record.steps == [{"state": "installing", "at": 1.0, "note": ""}]
    assert [r.state for r in records.all()] == ["interrupted"]


# -- the model lifecycle ----------------------------------------------------------------------------------------------
def _model(folder: Path, line: str, version: str) -> StoredModel:
    path = folder / f"{line}-{version}.onnx"
    path.write_bytes(f"{line} {version}".encode())
    return StoredModel(line, version, str(path), hashlib.sha256(path.read_bytes()).hexdigest(), time.time())


def _lifecycle(tmp_path: Path, saved: Lifecycle | None = None) -> ModelLifecycle:
    store = ModelStore(tmp_path / "state")
    if saved is not None:
        store.save(saved)
    factory_file = tmp_path / "factory.onnx"
    factory_file.write_bytes(b"factory")
    factory = factory_entry(str(factory_file), "parts", "1.0.0", hashlib.sha256(b"factory").hexdigest())
    return ModelLifecycle(store, AuditLog(tmp_path / "audit.log"), factory, probation_s=60.0)


@pytest.mark.parametrize("from_state", sorted(LIFECYCLE_TRANSITIONS))
def test_every_lifecycle_transition_the_table_allows_succeeds_and_every_other_raises(tmp_path, from_state):
    for to_state in [*sorted(LIFECYCLE_TRANSITIONS), NOT_A_STATE]:
        case = tmp_path / f"{from_state}-{to_state}"
        case.mkdir()
        v2, v3 = _model(case, "parts", "2.0.0"), _model(case, "parts", "3.0.0")
        lifecycle = _lifecycle(case, Lifecycle(active=None if from_state == FACTORY else v2, state=from_state))
        state_file = case / "state" / "models" / "lifecycle.json"
        before = state_file.read_bytes()
        active = None if to_state == FACTORY else v3
        if to_state in LIFECYCLE_TRANSITIONS[from_state]:
            lifecycle._move(to_state, active=active)
            again = ModelStore(case / "state").load()
            assert (again.state, again.active) == (to_state, active)
        else:
            with pytest.raises(InvalidTransition) as raised:
                lifecycle._move(to_state, active=active)
            assert f"from {from_state!r} to {to_state!r}" in str(raised.value)
            assert lifecycle.state.state == from_state and state_file.read_bytes() == before


def test_the_lifecycle_operations_walk_the_tables_edges(tmp_path):
    """Each edge of the lifecycle table, taken by the operation that takes it on a device."""
    lifecycle = _lifecycle(tmp_path)
    factory = lifecycle.factory
    v2, v3, v4 = (_model(tmp_path, "parts", v) for v in ("2.0.0", "3.0.0", "4.0.0"))
    seen = [lifecycle.state.state]

    def then(state: str) -> None:
        assert lifecycle.state.state == state and ModelStore(tmp_path / "state").load().state == state
        seen.append(state)

    lifecycle.begin_probation(v2, factory, 15.0, 0)  # an update activated
    then(PROBATION)
    lifecycle.begin_probation(v3, v2, 15.0, 0)  # a newer one during that probation
    then(PROBATION)
    assert lifecycle.mark_good() == v3  # the watchdog passed it
    then(GOOD)
    assert lifecycle.mark_good() is None  # nothing to pass: no move
    lifecycle.switch_to(v2, v3)  # an operator goes back to a retained release
    then(GOOD)
    lifecycle.switch_to(factory, v2)  # ... and to the factory model
    then(FACTORY)
    lifecycle.switch_to(v3, factory)  # ... and forward again, to a release that ran before
    then(GOOD)
    lifecycle.begin_probation(v4, v3, 15.0, 0)
    then(PROBATION)
    lifecycle.switch_to(factory, v4)  # the watchdog's rollback
    then(FACTORY)
    lifecycle.begin_probation(v4, factory, 15.0, 0)
    then(PROBATION)
    resumed = _lifecycle(tmp_path)  # the agent restarts during the probation: it resumes
    assert resumed.startup_model() == v4 and resumed.state.state == PROBATION
    assert resumed.state.probation_restarts == 1
    assert set(zip(seen, seen[1:])) == {(a, b) for a, nexts in LIFECYCLE_TRANSITIONS.items() for b in nexts}
    with pytest.raises(InvalidTransition, match="from 'factory' to 'factory'"):
        _lifecycle(tmp_path, Lifecycle()).switch_to(factory, v4)


def test_a_crash_loop_during_probation_is_rolled_back_through_the_table(tmp_path):
    lifecycle = _lifecycle(tmp_path)
    v2 = _model(tmp_path, "parts", "2.0.0")
    lifecycle.begin_probation(v2, lifecycle.factory, 15.0, 0)
    for restart in (1, 2):
        assert _lifecycle(tmp_path).startup_model() == v2
        assert ModelStore(tmp_path / "state").load().probation_restarts == restart
    third = _lifecycle(tmp_path)
    assert third.startup_model() == third.factory and third.state.state == FACTORY and third.state.active is None


def test_lifecycle_files_written_by_other_versions_still_load(tmp_path):
    """Before the table, "good" with no active release meant the factory model: that is "factory" now. A state
    this agent does not know, with a release active, gets a short probation rather than blind trust."""
    state_file = tmp_path / "state" / "models" / "lifecycle.json"
    ModelStore(tmp_path / "state")
    state_file.write_text(json.dumps({"active": None, "state": "good", "retained": [], "highest": {"parts": "2.0.0"}}))
    old = ModelStore(tmp_path / "state").load()
    assert old.state == FACTORY and old.highest == {"parts": "2.0.0"}
    v2 = _model(tmp_path, "parts", "2.0.0")
    state_file.write_text(json.dumps({"active": v2.__dict__, "state": "trial", "probation_until": None}))
    lifecycle = _lifecycle(tmp_path)
    assert lifecycle.state.state == PROBATION
    before = time.time()
    assert lifecycle.startup_model() == v2
    assert lifecycle.state.probation_until >= before + MIN_RESUMED_PROBATION_S
    assert lifecycle.describe(v2)["running"]["state"] == PROBATION
    assert _lifecycle(tmp_path / "fresh").describe(lifecycle.factory)["running"]["state"] == GOOD  # as the API said


# -- the model store: a move, not a copy --------------------------------------------------------------------------------
def _staged_bundle(folder: Path) -> Path:
    bundle = folder / "delivery" / "bundle"
    (bundle / "golden").mkdir(parents=True)
    (bundle / "model.onnx").write_bytes(b"model bytes")
    (bundle / "manifest.json").write_text("{}")
    (bundle / "golden" / "frame.png").write_bytes(b"png")
    return bundle


def test_the_store_takes_a_staged_bundle_by_renaming_it(tmp_path):
    store = ModelStore(tmp_path / "state")
    bundle = _staged_bundle(tmp_path / "state" / "updates" / "u1")
    inode = (bundle / "model.onnx").stat().st_ino
    stored = store.add(bundle, "parts", "2.0.0", hashlib.sha256(b"model bytes").hexdigest())
    assert not bundle.exists() and Path(stored.path).stat().st_ino == inode  # the same file: no byte written again
    assert store.intact(stored) and (Path(stored.path).parent / "golden" / "frame.png").read_bytes() == b"png"
    # A second attempt at the same version (the first stopped before the switch) replaces the leftover whole.
    again = store.add(_staged_bundle(tmp_path / "state" / "updates" / "u2"), "parts", "2.0.0", stored.sha256)
    assert store.intact(again) and not list(store.store.glob("*/.*"))


def test_the_store_copies_a_bundle_staged_on_another_filesystem(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the test's temporary folder")
    other = Path(tempfile.mkdtemp(dir=shm))
    try:
        store = ModelStore(tmp_path / "state")
        bundle = _staged_bundle(other)
        stored = store.add(bundle, "parts", "2.0.0", hashlib.sha256(b"model bytes").hexdigest())
        assert store.intact(stored) and not bundle.exists() and not list(store.store.glob("*/.*"))
        assert os.stat(stored.path).st_dev == tmp_path.stat().st_dev
    finally:
        shutil.rmtree(other, ignore_errors=True)
