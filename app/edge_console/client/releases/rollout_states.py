"""A rollout's two state machines, each a transition table `{state: the states that may follow it}`, checked by
core/state_machine.py before every move (as the device's update records are: agent/updates/_states.py). A move
the table does not allow is a bug, never a state to save: it raises InvalidTransition, naming the machine and both
states, before anything is changed.

The rollout (`Rollout.status`):

    running -> done | halted (a failure, or too many) | cancelled (by the operator)
       \\                                                   every one of them -> rolled_back (Undo rollout)
        `-> rolled_back   (undone after a console closed under it, never resumed)

A device in a rollout (`DeviceStep.stage`; saved as `phase` plus the push's state, see rollout.py):

    waiting -> uploading -> installing -> good | failed | rolled_back (the device's own verdict, once cancelled)
                  |  \\          |  \\-> cancelled (the device could not be asked how a cancelled install ended)
                  |   \\         `-> waiting        (the device stopped mid-install, nothing changed: sent again)
                  |    `-> waiting               (resumed with other bytes than the upload began with)
                  `-> failed | cancelled         (the link, a refusal; the operator's cancel: nothing installed)
    good | failed | cancelled -> rolled_back     (Undo rollout took the device back)
    skipped                                      (never sent anything: not compatible, not allowed, offline)

Resuming a rollout (after a console closed, or the headless command was stopped) is written as moves from these
tables (rollout_runner.py): an upload whose bytes differ from the delivery at hand goes back to waiting and is sent
again from its start; an install the device is running is followed.
"""

from __future__ import annotations

from collections.abc import Mapping

# The rollout's statuses
RUNNING, HALTED, DONE, CANCELLED, ROLLED_BACK = "running", "halted", "done", "cancelled", "rolled_back"
ROLLOUT_TRANSITIONS: Mapping[str, frozenset[str]] = {
    RUNNING: frozenset({DONE, HALTED, CANCELLED, ROLLED_BACK}),
    HALTED: frozenset({ROLLED_BACK}),
    DONE: frozenset({ROLLED_BACK}),
    CANCELLED: frozenset({ROLLED_BACK}),
    ROLLED_BACK: frozenset(),
}

# A device's stages; `uploading` and `installing` are both saved as the phase "pushing" (what the views show and
# files written before these tables hold), told apart by whether the device gave the install an update id.
WAITING, UPLOADING, INSTALLING, GOOD, FAILED, SKIPPED = "waiting", "uploading", "installing", "good", "failed", "skipped"
PUSHING = "pushing"  # the saved phase of both uploading and installing
DEVICE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    WAITING: frozenset({UPLOADING}),
    UPLOADING: frozenset({INSTALLING, WAITING, FAILED, CANCELLED}),
    INSTALLING: frozenset({GOOD, FAILED, ROLLED_BACK, CANCELLED, WAITING}),
    GOOD: frozenset({ROLLED_BACK}),
    FAILED: frozenset({ROLLED_BACK}),
    CANCELLED: frozenset({ROLLED_BACK}),
    SKIPPED: frozenset(),
    ROLLED_BACK: frozenset(),
}
DEVICE_START = (WAITING, SKIPPED)  # where a device's row starts (it is made so, not moved there)
IN_FLIGHT = (UPLOADING, INSTALLING)  # sent something, not finished


