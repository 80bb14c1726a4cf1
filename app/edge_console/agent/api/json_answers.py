"""The one way the agent's routes refuse a request and read a JSON body.

Every refusal is `{"error": <short, stable words>, "detail": <what to do>}` with a 4xx/5xx status: consoles show
`detail` to people and match on `error` and the status, so all routes (and the middlewares before them) build it
here. Request bodies are small flat JSON objects: their size is checked before a byte is read and their nesting
before the parser recurses into it (core/bounded_json.py), and anything else is a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from edge_console.core import bounded_json

NOT_AN_OBJECT = "the body must be a JSON object"


def json_error(status: int, error: str, detail: str = "", *, headers: Mapping[str, str] | None = None) -> web.Response:
    """A refusal: `error` names what went wrong in a few words, `detail` says what to do about it."""
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


async def json_object_body(request: web.Request, *, max_bytes: int, max_depth: int,
                           empty_is_object: bool = False) -> dict:
    """The request's body as a JSON object of at most `max_bytes` and `max_depth` levels; 413 or 400 otherwise.
    `empty_is_object`: a request without a body counts as `{}` (for requests whose fields are all optional)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=request.content_length)
    if empty_is_object and not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=lambda text: bounded_json.loads(text, max_depth))
    except ValueError:  # also nesting past max_depth: these bodies are flat objects
        raise web.HTTPBadRequest(reason=NOT_AN_OBJECT) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(reason=NOT_AN_OBJECT)
    return data
