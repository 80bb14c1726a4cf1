"""Parsing the small JSON control messages clients send on the agent's WebSockets, with bounded nesting.

Python's json module recurses once per nesting level: 4000 `[` in a 4 KB message raise RecursionError, which is
not a ValueError and escaped the handler. A control message is a flat object; anything nested deeper than
MAX_DEPTH is refused before json sees it.
"""

from __future__ import annotations

from edge_console.core import bounded_json
from edge_console.core.bounded_json import nesting_depth

MAX_DEPTH = 4


class ControlMessageError(ValueError):
    pass


def parse_control_message(text: str) -> dict:
    """A JSON object from a client; ControlMessageError says what is wrong with anything else."""
    if nesting_depth(text) > MAX_DEPTH:
        raise ControlMessageError(f"message nested deeper than {MAX_DEPTH} levels; send a flat JSON object")
    try:
        data = bounded_json.loads(text, MAX_DEPTH)  # also no NaN or infinite numbers
    except ValueError as exc:
        raise ControlMessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlMessageError("a control message must be a JSON object such as {\"type\": \"ping\"}")
    return data
