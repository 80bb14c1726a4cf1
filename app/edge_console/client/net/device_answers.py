"""Every answer a device sends, read one way: bounded in size before it is read, bounded in nesting while it is
parsed, and of the JSON type the caller expects, or one plain error, `UnreadableAnswer`.

A device is untrusted input. Python's json module recurses once per nesting level, so a few kilobytes of `[` raise
RecursionError, which is not a ValueError and used to end a device's session without a word; a body of a gigabyte
would be held in memory before any check. Here the declared length is checked before anything is read, the body
is read up to the limit and no further, and `core.bounded_json` parses it (depth and finite numbers). HTTP bodies
use `read_json`, WebSocket text messages `parse_json`; tests/client/test_hostile_answers.py fails when
the console parses what a device sent any other way. Qt-free.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from edge_console.core import bounded_json
from edge_console.core.protocol import ProtocolError

MAX_ANSWER_BYTES = 4 * 2**20  # a device's JSON answers are kilobytes; a history page of 600 samples is ~200 KB
_JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null",
                    int: "a number", float: "a number"}

NESTED_TOO_DEEPLY = "nested too deeply"
TOO_LARGE = "too large"
NOT_JSON = "not JSON"
OUT_OF_RANGE = "a number out of range"  # NaN, Infinity, 1e999, an integer beyond float's range
NOT_EXPECTED = "not what the console asked for"


class UnreadableAnswer(ProtocolError):
    """The device's answer is too large, nested too deeply, not JSON, or JSON of another type than expected.
    A ProtocolError (so a ValueError): every handler of bad device data already takes it."""

    def __init__(self, what: str, kind: str, detail: str = "") -> None:
        self.what = what  # which answer: "/v1/health", "a telemetry message"
        self.kind = kind  # NESTED_TOO_DEEPLY, TOO_LARGE, NOT_JSON, OUT_OF_RANGE or NOT_EXPECTED
        super().__init__(f"the device sent an answer the console cannot read ({what}: {kind}"
                         + (f", {detail}" if detail else "") + ")")


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def parse_json(data: str | bytes | bytearray, what: str, expect: type | tuple[type, ...] | None = dict,
               limit: int = MAX_ANSWER_BYTES) -> Any:
    """A JSON document a device sent (a WebSocket message, a body already read), of type `expect` (None: any)."""
    if len(data) > limit:  # characters of a str: at least as many bytes on the wire
        raise UnreadableAnswer(what, TOO_LARGE, f"more than {_size(limit)}")
    try:
        value = bounded_json.loads(data)
    except bounded_json.JsonLimitError as exc:
        if "nested" in str(exc):
            raise UnreadableAnswer(what, NESTED_TOO_DEEPLY,
                                   f"more than {bounded_json.DEFAULT_MAX_DEPTH} levels") from None
        raise UnreadableAnswer(what, OUT_OF_RANGE, str(exc)) from None
    except RecursionError:  # bounded_json refuses deep documents first; kept so no path can ever raise it
        raise UnreadableAnswer(what, NESTED_TOO_DEEPLY) from None
    except ValueError:  # also UnicodeDecodeError
        raise UnreadableAnswer(what, NOT_JSON) from None
    if expect is not None and not isinstance(value, expect):
        wanted = expect if isinstance(expect, tuple) else (expect,)
        raise UnreadableAnswer(what, NOT_EXPECTED, f"{_type_name(value)} where "
                               + " or ".join(_JSON_TYPE_NAMES.get(t, t.__name__) for t in wanted) + " belongs")
    return value


async def read_body(resp: aiohttp.ClientResponse, what: str | None = None, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The body of `resp`, at most `limit` bytes: refused on its declared length before anything is read, and as
    soon as more than `limit` bytes arrived (a body without a length, or one that lies about it)."""
    what = what or resp.url.path
    declared = resp.content_length
    if declared is not None and declared > limit:
        resp.close()  # nothing of it is read: the connection cannot be reused
        raise UnreadableAnswer(what, TOO_LARGE, f"{_size(declared)}, more than {_size(limit)}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            resp.close()
            raise UnreadableAnswer(what, TOO_LARGE, f"more than {_size(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(resp: aiohttp.ClientResponse, what: str | None = None,
                    expect: type | tuple[type, ...] | None = dict, limit: int = MAX_ANSWER_BYTES) -> Any:
    """The JSON body of `resp` (any status: a device's errors are JSON too), checked as `parse_json` does."""
    what = what or resp.url.path
    return parse_json(await read_body(resp, what, limit), what, expect, limit)


async def read_error_detail(resp: aiohttp.ClientResponse, keys: tuple[str, ...] = ("detail", "error"),
                            limit: int = 64 * 1024) -> str:
    """What a device says about a refusal (the first of `keys` its JSON error has as text), or "" when it says
    nothing readable: never an exception, the caller reports the status either way. Untrusted: show it made visible."""
    try:
        body = await read_json(resp, limit=limit)
    except (UnreadableAnswer, aiohttp.ClientError, TimeoutError):
        return ""
    return next((body[k] for k in keys if isinstance(body.get(k), str) and body[k]), "")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"
