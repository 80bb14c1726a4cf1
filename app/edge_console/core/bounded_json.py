"""JSON from the network or from files, parsed with bounds: nesting depth and finite numbers.

Python's json module recurses once per nesting level, so a few kilobytes of `[` raise RecursionError, which is
not a ValueError and escapes every parser that promises its own error (the field trial found it in the stream
framing, the bundle manifest, pairing and update bodies). And JSON's `1e999` is a float infinity, which `int()`
turns into OverflowError. Every document we read is shallow and finite, so both are refused up front here, as a
ValueError (`JsonLimitError`) that callers already map to their own error.
"""

from __future__ import annotations

import json
import math
import re
import sys

DEFAULT_MAX_DEPTH = 32

# A string (also one left open at the end of the text), or one bracket: strings are skipped whole, so brackets in
# them do not count, and the loop below visits only brackets.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


class JsonLimitError(ValueError):
    """The document is nested too deeply or holds a number that is not finite."""


def nesting_depth(text: str) -> int:
    """The deepest [ / { nesting in `text`, ignoring brackets inside strings; linear time, no recursion."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonLimitError(f"number {text[:40]} is out of range")
    return value


def _finite_int(text: str) -> int:
    # JSON integers have no bound (Python reads up to 4300 digits): one beyond float's range is a number no reader
    # of ours can use (every chart, clock and format turns it into a float, raising OverflowError), so it is refused.
    value = int(text)
    if not -sys.float_info.max <= value <= sys.float_info.max:
        raise JsonLimitError(f"number {text[:40]}... is out of range")
    return value


def _no_constant(name: str):
    raise JsonLimitError(f"{name} is not a JSON number")


def loads(data: str | bytes | bytearray, max_depth: int = DEFAULT_MAX_DEPTH):
    """json.loads, refusing documents nested deeper than `max_depth` and numbers that are not finite
    (NaN, Infinity, 1e999, or an integer beyond float's range): JsonLimitError, a ValueError, like any other
    malformed JSON."""
    if isinstance(data, bytes | bytearray):
        data = bytes(data).decode(json.detect_encoding(data))  # as json.loads does; UnicodeDecodeError is a ValueError
    if (data.count("[") + data.count("{") > max_depth  # a cheap bound first: most documents stop here
            and nesting_depth(data) > max_depth):
        raise JsonLimitError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(data, parse_float=_finite, parse_int=_finite_int, parse_constant=_no_constant)
