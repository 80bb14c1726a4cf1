"""The update path's two state machines, each a transition table `{state: the states that may follow it}`, checked
by core/state_machine.py before every move (Mender's and RAUC's clients keep theirs the same way).
A move the table does not allow is a bug, never a state to persist: it raises InvalidTransition, naming the
machine and both states, before anything is changed in memory or written to disk.

An update record (one attempt, <state>/updates/<id>/state.json; the step names are the wire protocol's,
core/protocol.py):

    staged -> verified -> checked -> active -> good
       \\          \\          \\          \\-> rolled_back   (the watchdog, an operator, or start-up took it back)
        `----------`----------`--> rejected | interrupted    (refused with its reason | the agent stopped mid-way)

The model lifecycle (which model runs, <state>/models/lifecycle.json):

    factory: no release is active, the model the agent was started with runs
    probation: a release runs and the watchdog watches it
    good: a release runs and has passed its probation (or is one the device went back to: it has run before)

Start-up recovery moves both machines through these same tables (_lifecycle.py, _service.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from edge_console.core.protocol import (
    UPDATE_FINAL,
    UPDATE_IN_PROGRESS,
    UPDATE_ON_PROBATION,
    UPDATE_STEPS,
    UPDATE_SUCCEEDED,
)

log = logging.getLogger(__name__)

STAGED, VERIFIED, CHECKED = UPDATE_IN_PROGRESS
ACTIVE, GOOD = UPDATE_ON_PROBATION, UPDATE_SUCCEEDED
REJECTED, INTERRUPTED, ROLLED_BACK = "rejected", "interrupted", "rolled_back"
assert {REJECTED, INTERRUPTED, ROLLED_BACK, GOOD} == set(UPDATE_FINAL)  # the protocol's names, not a second set

RECORD_START = STAGED  # a new record starts here (UpdateRecords.new), it is not a transition
RECORD_TRANSITIONS: Mapping[str, frozenset[str]] = {
    STAGED: frozenset({VERIFIED, REJECTED, INTERRUPTED}),
    VERIFIED: frozenset({CHECKED, REJECTED, INTERRUPTED}),
    # checked -> active: the switch; also start-up's, when lifecycle.json took the model but the record missed it
    CHECKED: frozenset({ACTIVE, REJECTED, INTERRUPTED}),
    # Once active the device runs the new model: only its probation's outcome may follow, never "rejected" or
    # "interrupted" ("nothing was changed" would be untrue).
    ACTIVE: frozenset({GOOD, ROLLED_BACK}),
    **{final: frozenset() for final in UPDATE_FINAL},
}
assert set(RECORD_TRANSITIONS) == set(UPDATE_STEPS)

FACTORY, PROBATION = "factory", "probation"
LIFECYCLE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    # The factory model never is on probation and is never switched to itself: from it, a release is activated
    # (probation) or a retained one is returned to (good: it has run before).
    FACTORY: frozenset({PROBATION, GOOD}),
    # probation -> probation: a newer release activated during a probation, or start-up resuming one.
    PROBATION: frozenset({GOOD, PROBATION, FACTORY}),
    # good -> good: a rollback from one retained release to another.
    GOOD: frozenset({PROBATION, GOOD, FACTORY}),
}


# -- files written by other versions ---------------------------------------------------------------------------------
def record_step_from_disk(step: str, where: object = "") -> str:
    """The step an update record read from disk is in. Every agent version so far has written only the eight
    protocol names (the git history has no other). Any other name comes from a newer agent (the device was then
    downgraded) or a hand-edited file: it is read as "interrupted", a final step that claims nothing changed and
    lets a console waiting on it stop; the lifecycle, not the record, says which model runs, so nothing is lost.
    The record's own `steps` history keeps the name as written."""
    if step in RECORD_TRANSITIONS:
        return step
    log.warning("update record %s is in step %r, which this agent does not know; it is read as %r",
                where, step, INTERRUPTED)
    return INTERRUPTED


def lifecycle_state_from_disk(state: str, has_active_release: bool) -> str:
    """The lifecycle state a lifecycle.json holds. Versions before the explicit table wrote "good" when no release
    was active (the factory model ran): that is "factory" now, as is any state without an active release. A state
    this version does not know, with a release active, is read as "probation": the watchdog watches that release
    again (start-up gives it a short probation) rather than trusting it blindly."""
    if not has_active_release:
        return FACTORY
    if state in (GOOD, PROBATION):
        return state
    log.warning("lifecycle.json is in state %r, which this agent does not know; it is read as %r", state, PROBATION)
    return PROBATION
