"""The one check behind every state machine of the update path (the device's update records and model lifecycle,
the console's rollouts): a transition table `{state: the states that may follow it}`, enforced by the code that
moves the state, as Mender's and RAUC's clients do.

A move the table does not allow is a bug, never a state to persist: it raises InvalidTransition, naming the machine
and both states, before anything is changed in memory or written to disk. A state the table does not know (one a
newer program saved) allows nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

TransitionTable = Mapping[str, frozenset[str]]


class InvalidTransition(RuntimeError):
    """A move its state machine does not allow: a bug in the code that asked for it (nothing was changed)."""

    def __init__(self, machine: str, from_state: str, to_state: str, allowed: frozenset[str]) -> None:
        self.machine, self.from_state, self.to_state = machine, from_state, to_state
        can = ", ".join(sorted(allowed)) if allowed else f"nothing, {from_state!r} is final"
        super().__init__(f"{machine}: no transition from {from_state!r} to {to_state!r} "
                         f"(from {from_state!r} only: {can})")


def check_transition(table: TransitionTable, machine: str, from_state: str, to_state: str) -> None:
    """Raise InvalidTransition unless `table` allows `from_state` -> `to_state`."""
    allowed = table.get(from_state, frozenset())
    if to_state not in allowed:
        raise InvalidTransition(machine, from_state, to_state, allowed)


def can_move(table: TransitionTable, from_state: str, to_state: str) -> bool:
    return to_state in table.get(from_state, frozenset())
