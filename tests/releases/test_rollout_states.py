"""A rollout's state machines (client/releases/rollout_states.py), walked whole through the code that enforces
them (`Rollout.move`, `DeviceStep.move`): every transition a table allows succeeds and is saved as such, every
other raises InvalidTransition and changes nothing."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from edge_console.client.releases.push import PushState
from edge_console.client.releases.rollout import DeviceStep, Rollout, RolloutStore
from edge_console.client.releases.rollout_states import (
    DEVICE_START,
    DEVICE_TRANSITIONS,
    INSTALLING,
    PUSHING,
    ROLLOUT_TRANSITIONS,
    RUNNING,
    UPLOADING,
    WAITING,
)
from edge_console.core.state_machine import InvalidTransition

NOT_A_STATE = "paused"  # a name neither table knows (as a newer console might have saved)
SHA = "ab" * 32


def step_at(stage: str) -> DeviceStep:
    """A device's row in `stage`, as a rollout would have saved it."""
    step = DeviceStep("dev-1", "Line 1", detail="as saved")
    if stage == UPLOADING:
        step.phase, step.push = PUSHING, asdict(PushState("/v1/uploads/" + "0" * 32, 4096, "", SHA))
    elif stage == INSTALLING:
        step.phase, step.push = PUSHING, asdict(PushState("/v1/uploads/" + "0" * 32, 8192, "upd-1", SHA))
        step.record = {"id": "upd-1", "state": "active"}
    else:
        step.phase = stage
    assert step.stage == stage
    return step


def push_for(stage: str) -> PushState | None:
    """The push's state a move to `stage` carries (the stage is read back from it)."""
    if stage == UPLOADING:
        return PushState(sha256=SHA)
    if stage == INSTALLING:
        return PushState("/v1/uploads/" + "1" * 32, 100, "upd-2", SHA)
    return None


def saved_again(tmp_path, rollout: Rollout) -> Rollout:
    store = RolloutStore(tmp_path / "console.sqlite")
    try:
        store.save(rollout)
        return store.get(rollout.id)
    finally:
        store.close()


def test_the_tables_name_every_state_and_final_ones_lead_nowhere():
    stages = set(DEVICE_TRANSITIONS)
    assert set().union(*DEVICE_TRANSITIONS.values()) <= stages
    assert set().union(*DEVICE_TRANSITIONS.values()) | set(DEVICE_START) == stages  # every stage is reachable
    assert DEVICE_TRANSITIONS["skipped"] == DEVICE_TRANSITIONS["rolled_back"] == frozenset()
    assert set().union(*ROLLOUT_TRANSITIONS.values()) | {RUNNING} == set(ROLLOUT_TRANSITIONS)
    assert ROLLOUT_TRANSITIONS["rolled_back"] == frozenset()


@pytest.mark.parametrize("from_stage", sorted(DEVICE_TRANSITIONS))
def test_every_device_move_the_table_allows_works_and_every_other_raises(tmp_path, from_stage):
    for to_stage in [*sorted(DEVICE_TRANSITIONS), NOT_A_STATE]:
        step = step_at(from_stage)
        rollout = Rollout("r-1", "parts-2.0.0", "parts 2.0.0", [step])
        before = asdict(step)
        if to_stage in DEVICE_TRANSITIONS[from_stage]:
            step.move(to_stage, "moved", push=push_for(to_stage))
            assert step.stage == to_stage and step.detail == "moved"
            assert step.phase == (PUSHING if to_stage in (UPLOADING, INSTALLING) else to_stage)
            if to_stage == WAITING:  # nothing of the old push is kept: it starts again
                assert step.push == asdict(PushState()) and step.record == {}
            elif to_stage in (UPLOADING, INSTALLING):
                assert step.push == asdict(push_for(to_stage))
            else:
                assert step.push == before["push"] and step.record == before["record"]
            assert saved_again(tmp_path, rollout).steps[0].stage == to_stage
        else:
            with pytest.raises(InvalidTransition) as raised:
                step.move(to_stage, "moved", push=push_for(to_stage))
            assert f"from {from_stage!r} to {to_stage!r}" in str(raised.value)
            assert asdict(step) == before, "nothing changed"


def test_a_push_state_that_contradicts_the_stage_is_refused():
    with pytest.raises(ValueError, match="installing needs a push state with the device's update id"):
        step_at(UPLOADING).move(INSTALLING, push=PushState(sha256=SHA))
    with pytest.raises(ValueError, match="uploading needs a push state without"):
        step_at(WAITING).move(UPLOADING, push=PushState(update_id="upd-3"))


def test_a_stage_this_console_does_not_know_moves_nowhere():
    step = DeviceStep("dev-1", "Line 1", phase=NOT_A_STATE)
    for to_stage in DEVICE_TRANSITIONS:
        with pytest.raises(InvalidTransition, match=f"'{NOT_A_STATE}' is final"):
            step.move(to_stage, push=push_for(to_stage))
    assert step.phase == NOT_A_STATE


@pytest.mark.parametrize("from_status", sorted(ROLLOUT_TRANSITIONS))
def test_every_rollout_move_the_table_allows_works_and_every_other_raises(tmp_path, from_status):
    for to_status in [*sorted(ROLLOUT_TRANSITIONS), NOT_A_STATE]:
        rollout = Rollout("r-1", "parts-2.0.0", "parts 2.0.0", [step_at(WAITING)], status=from_status,
                          reason="as saved")
        before = rollout.to_dict()
        if to_status in ROLLOUT_TRANSITIONS[from_status]:
            rollout.move(to_status, "why")
            assert (rollout.status, rollout.reason) == (to_status, "why")
            assert saved_again(tmp_path, rollout).status == to_status
        else:
            with pytest.raises(InvalidTransition) as raised:
                rollout.move(to_status, "why")
            assert f"rollout r-1: no transition from {from_status!r} to {to_status!r}" in str(raised.value)
            assert rollout.to_dict() == before, "nothing changed"


def test_rows_saved_before_the_tables_read_as_the_same_stages(tmp_path):
    """A row written by an earlier console (no sha256 in its push, no delivery record) is read as it was."""
    old = {"id": "r-old", "release_id": "parts-2.0.0", "release_label": "parts 2.0.0", "batch": 1,
           "max_failure_pct": None, "status": "running", "reason": "", "created_at": 1.0,
           "steps": [{"device_id": "a", "name": "A", "phase": "pushing", "detail": "", "canary": True,
                      "push": {"upload_url": "/v1/uploads/" + "2" * 32, "offset": 10, "update_id": ""},
                      "record": {}, "updated_at": 2.0, "offline_since": 0.0},
                     {"device_id": "b", "name": "B", "phase": "pushing", "detail": "", "canary": False,
                      "push": {"upload_url": "", "offset": 0, "update_id": "upd-9"}, "record": {},
                      "updated_at": 2.0, "offline_since": 0.0}]}
    rollout = Rollout.from_dict(old)
    assert [s.stage for s in rollout.steps] == [UPLOADING, INSTALLING] and rollout.delivery == {}
    assert saved_again(tmp_path, rollout).to_dict() == rollout.to_dict()
