"""Parsing the small JSON control messages clients send on the agent's WebSockets, with bounded nesting.

Python's json module recurses once per nesting level: 4000 `[` in a 4 KB message raise RecursionError, which is
not a ValueError and escaped the handler. A control message is a flat object; anything nested deeper than
MAX_DEPTH is refused before json sees it.
"""

from __future__ import annotations

import json

MAX_DEPTH = 4


class ControlMessageError(ValueError):
    pass


def nesting_depth(text: str) -> int:
    """The deepest [ / { nesting in `text`, ignoring brackets inside strings; linear time, no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_control_message(text: str) -> dict:
    """A JSON object from a client; ControlMessageError says what is wrong with anything else."""
    if nesting_depth(text) > MAX_DEPTH:
        raise ControlMessageError(f"message nested deeper than {MAX_DEPTH} levels; send a flat JSON object")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ControlMessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlMessageError("a control message must be a JSON object such as {\"type\": \"ping\"}")
    return data
