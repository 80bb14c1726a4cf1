"""The update API: install an uploaded release, list versions, roll back, follow progress, read the audit log.

POST /v1/updates {"upload": ID}            operator  start installing a finished upload (see uploads.py)
GET  /v1/updates/{update_id}               viewer    one update's record: state, steps, figures, reason
GET  /v1/models                            viewer    running, previous, retained, probation left, updates
POST /v1/models/rollback {"version": V?}   operator  back to the previous model, or to retained version V
WS   /v1/updates/events?after=N|latest     viewer    every step of every update and rollback, as it happens
GET  /v1/audit?after=N&limit=M             viewer    the device's hash-chained audit log
GET  /v1/audit/verify                      viewer    the chain's check
GET  /v1/release-trust                     viewer    which root the device trusts
PUT  /v1/release-trust                     admin     install the release authority's root.json
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import WSMsgType, web

from edge_console.agent.api.access import actor, add_routes
from edge_console.agent.api.json_answers import json_error, json_object_body
from edge_console.agent.api.socket_registry import open_socket
from edge_console.agent.updates import UpdateRejected
from edge_console.core.releases.trust import ReleaseTrustError, trusted_root

log = logging.getLogger(__name__)
MAX_ROOT_BYTES = 1024 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_BODY_DEPTH = 4  # update and rollback requests are flat objects


async def _json_body(request: web.Request) -> dict:
    """The request's JSON object; none at all counts as {} (a rollback to the previous model sends nothing)."""
    return await json_object_body(request, max_bytes=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH, empty_is_object=True)


def _without_paths(described: dict) -> dict:
    """What /v1/models shows: every model but where its file lies on the device (a viewer has no use for the
    device's folder layout, and it says more about the device than a console needs)."""
    def strip(model):
        return {k: v for k, v in model.items() if k != "path"} if isinstance(model, dict) else model
    out = dict(described)
    for key in ("running", "previous"):
        out[key] = strip(out.get(key))
    out["retained"] = [strip(m) for m in out.get("retained") or []]
    return out


def install_update_routes(app: web.Application, agent, uploads, roles: dict[tuple[str, str], str]) -> None:
    """Register the routes (closures over the agent's update manager) and their roles."""
    updates = agent.updates

    async def start_update(request: web.Request) -> web.Response:
        upload_id = str((await _json_body(request)).get("upload", ""))
        if updates.busy:
            return json_error(409, "busy", "another update is in progress on this device; wait for it")
        taken = uploads.complete(upload_id)
        if taken is None:
            meta = uploads.meta(upload_id)
            detail = (f"upload {upload_id} has {meta['offset']} of {meta['length']} bytes; finish it first" if meta
                      else f"no finished upload {upload_id!r} (it expired, or was used)")
            return json_error(409 if meta else 404, "upload not ready", detail)
        path, follower = taken
        try:
            record = updates.submit_release(path, "upload", actor(request), name=path.name.split("-", 2)[-1],
                                            follower=follower)
        except UpdateRejected as exc:
            if follower is not None:
                follower.abandon()
            return json_error(409, "busy", str(exc))
        return web.json_response(record.to_dict(), status=202)

    async def get_update(request: web.Request) -> web.Response:
        record = updates.records.get(request.match_info["update_id"])
        if record is None:
            return json_error(404, "no such update", "GET /v1/models lists the recent ones")
        return web.json_response(record.to_dict())

    async def models(request: web.Request) -> web.Response:
        return web.json_response(_without_paths(updates.describe()))

    async def rollback(request: web.Request) -> web.Response:
        version = (await _json_body(request)).get("version")
        if version is not None and not isinstance(version, str):
            return json_error(400, "bad request", "version must be a string such as 1.0.0")
        try:
            future = updates.submit(lambda: updates.rollback(version, actor(request), "requested by an operator"))
            target = await asyncio.wrap_future(future)
        except UpdateRejected as exc:
            return json_error(409, "busy", str(exc))
        except ValueError as exc:
            return json_error(409, "cannot roll back", str(exc))
        return web.json_response({"running": {k: v for k, v in target.__dict__.items() if k != "path"}})

    async def events(request: web.Request) -> web.StreamResponse:
        ws = await open_socket(request, agent.sockets, "update events")  # counted and closed on revocation like every socket
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        loop = asyncio.get_running_loop()
        after = request.query.get("after", "0")
        try:  # "latest": only what happens from now on
            seq = updates.events.last_seq if after == "latest" else int(after)
        except ValueError:
            seq = 0

        async def send() -> None:
            nonlocal seq
            while not ws.closed:
                woken = asyncio.Event()
                updates.events.on_next(lambda event=woken: loop.call_soon_threadsafe(event.set))
                for event in updates.events.after(seq):
                    await ws.send_str(json.dumps(event, default=str))
                    seq = event["seq"]
                await woken.wait()

        sender = asyncio.create_task(send())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            agent.sockets.remove(ws)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return ws

    async def audit(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
            limit = min(int(request.query.get("limit", "1000")), 5000)
        except ValueError:
            return json_error(400, "bad query", "after and limit must be whole numbers")
        entries = await asyncio.to_thread(agent.audit.entries, after, limit)
        return web.json_response({"entries": entries})

    async def audit_verify(request: web.Request) -> web.Response:
        """The chain's check and its head signed by the device's key (none in lab mode): consoles remember it."""
        report = await asyncio.to_thread(agent.audit.verify, request.query.get("head"))
        signed = await asyncio.to_thread(agent.signed_audit_head)
        return web.json_response({**report.to_dict(), "signed_head": signed.to_dict() if signed else None})

    async def get_trust(request: web.Request) -> web.Response:
        from edge_console.core.releases.checks import held_versions

        root = trusted_root(updates.trust_dir)
        if root is None:
            return web.json_response({"installed": False})
        # `held`: the snapshot/timestamp/targets versions accepted last; a console signs its delivery above them.
        return web.json_response({"installed": True, "root_version": root.signed.version,
                                  "expires": root.signed.expires.isoformat(),
                                  "keys": sorted(k[:16] for k in root.signed.keys),
                                  "held": held_versions(updates.trust_dir)})

    async def put_trust(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_ROOT_BYTES:
            return json_error(413, "too large", "root.json is a few kilobytes")
        body = await request.read()
        try:
            result = await asyncio.to_thread(updates.install_trust, body, actor(request))
        except (ReleaseTrustError, ValueError, KeyError, TypeError) as exc:
            return json_error(400, "not a root.json", f"{exc!s:.300}")
        return web.json_response(result)

    add_routes(app, roles, (
        ("POST", "/v1/updates", start_update, "operator"),
        ("GET", "/v1/updates/events", events, "viewer"),
        ("GET", "/v1/updates/{update_id}", get_update, "viewer"),
        ("GET", "/v1/models", models, "viewer"),
        ("POST", "/v1/models/rollback", rollback, "operator"),
        ("GET", "/v1/audit", audit, "viewer"),
        ("GET", "/v1/audit/verify", audit_verify, "viewer"),
        ("GET", "/v1/release-trust", get_trust, "viewer"),
        ("PUT", "/v1/release-trust/root", put_trust, "admin"),
    ))
