"""Issue 21 item 8, the console's side: a hostile device (the fake agent over real HTTP on 127.0.0.1, answering
deeply nested JSON, bodies larger than any answer, things that are not JSON) never ends the console's session with
it. The session says why it cannot use the device, in words a person reads, keeps retrying with backoff, logs an
unexpected failure once, and takes the device back the moment it answers properly. Every device answer in the
console's source goes through the one bounded reader (`client/net/device_answers.py`): checked here by reading
the source, so a new `.json()` cannot slip in.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from edge_console.client.net.device_answers import MAX_ANSWER_BYTES
from edge_console.client.net.device_session import DeviceSession
from edge_console.core.backoff import BackoffPolicy
from edge_console.core.protocol import StreamHeader, decode_frame_message, encode_frame_message, header_bytes
from tests.support.fake_devices import FakeAgent, serving

WAIT_S = 30.0  # a guard against hanging only: every wait returns as soon as its condition holds
NESTED = "[" * 100_000 + "]" * 100_000  # 200 KB that raised RecursionError in the session's json.loads
CANNOT_READ = "the device sent an answer the console cannot read"
CONSOLE_SOURCE = Path(__file__).resolve().parents[2] / "app" / "edge_console" / "console"


def fast_backoff() -> BackoffPolicy:
    return BackoffPolicy(0.05, 0.2, 0.0)


@dataclass
class Recorder:
    """A SessionListener that keeps what it is told; `until` waits for a condition on it."""

    connections: list[tuple[bool, str]] = field(default_factory=list)
    health: list[dict] = field(default_factory=list)
    live: list[dict] = field(default_factory=list)
    frames: list = field(default_factory=list)
    streams: list[tuple[bool, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fail_health: int = 0  # how many health reports to fail on (a bug in whoever listens)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_info(self, info: dict) -> None:
        self.changed.set()

    def on_connection(self, connected: bool, reason: str) -> None:
        self.connections.append((connected, reason))
        self.changed.set()

    def on_health(self, health: dict) -> None:
        if self.fail_health:
            self.fail_health -= 1
            raise RuntimeError("listener bug")
        self.health.append(health)
        self.changed.set()

    def on_telemetry(self, samples: list[dict], from_history: bool) -> None:
        if not from_history:
            self.live.extend(samples)
        self.changed.set()

    def on_clock(self, offset_s: float, round_trip_s: float) -> None:
        pass

    def on_stream_state(self, live: bool, reason: str) -> None:
        self.streams.append((live, reason))
        self.changed.set()

    def on_frame(self, frame) -> None:
        self.frames.append(frame)
        self.changed.set()

    def on_trust(self, trust: str, detail: str) -> None:
        pass

    def on_error(self, message: str) -> None:
        self.errors.append(message)
        self.changed.set()

    def failures(self) -> list[str]:
        return [reason for connected, reason in self.connections if not connected]

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), WAIT_S)


def run_against(agent: FakeAgent, scenario: Callable[[DeviceSession, Recorder], Awaitable[None]],
                recorder: Recorder | None = None) -> None:
    recorder = recorder or Recorder()

    async def main() -> None:
        await agent.start()
        async with aiohttp.ClientSession() as http:
            session = DeviceSession(http, agent.address, recorder, lambda data, at: decode_frame_message(data)[0],
                                    None, backoff_policy=fast_backoff)
            session.start()
            try:
                await scenario(session, recorder)
            finally:
                await session.close()
                await agent.stop()

    asyncio.run(main())


async def nested_json(_request: web.Request) -> web.Response:
    return web.Response(text=NESTED, content_type="application/json")


async def html_page(_request: web.Request) -> web.Response:
    return web.Response(text="<html>router login</html>", content_type="text/html")


async def declared_too_large(_request: web.Request) -> web.Response:
    body = b'{"status": "ok", "reasons": ["' + b"x" * (MAX_ANSWER_BYTES + 1024) + b'"]}'
    return web.Response(body=body, content_type="application/json")


@dataclass
class EndlessBody:
    """An answer with no length that never ends (chunked): only a reader that stops at its limit sees its end."""

    sent: int = 0
    cap: int = 256 * 2**20  # the server's own guard, far above what the console may read

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            await response.write(b'{"status": "ok", "reasons": ["')
            while self.sent < self.cap:
                await response.write(b"x" * 65536)
                self.sent += 65536
        except (ConnectionResetError, aiohttp.ClientConnectionResetError, RuntimeError):
            pass  # the console hung up, as it should
        return response


@pytest.mark.parametrize("path", ["/v1/info", "/v1/health"])
def test_nested_json_is_said_retried_and_the_device_taken_back_when_it_behaves(path):
    agent = FakeAgent(scripted={path: nested_json})

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        await recorder.until(lambda: len(recorder.failures()) >= 3)  # it keeps trying, and says why each time
        for reason in recorder.failures():
            assert reason.startswith(f"{CANNOT_READ} ({path}: nested too deeply, more than 32 levels)")
            assert reason.endswith(" s") and "; retrying in " in reason
        assert not session._control_task.done()  # the session lives on
        assert any(CANNOT_READ in e and path in e for e in recorder.errors)  # the device's error list says it too
        assert len(recorder.errors) < len(recorder.failures())  # ...rate-limited, not once per retry
        del agent.scripted[path]  # the device behaves again
        await recorder.until(lambda: recorder.connections[-1] == (True, ""))
        await recorder.until(lambda: bool(recorder.health) and bool(recorder.live))

    run_against(agent, scenario)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked-without-end"])
def test_an_answer_larger_than_any_answer_is_refused_before_it_is_read(declared):
    endless = EndlessBody()
    agent = FakeAgent(scripted={"/v1/health": declared_too_large if declared else endless})

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        await recorder.until(lambda: len(recorder.failures()) >= 2)
        assert all(r.startswith(f"{CANNOT_READ} (/v1/health: too large") for r in recorder.failures())
        if not declared:
            # The reader stopped at its limit and hung up: the device could not make it read on.
            assert endless.sent < endless.cap
        del agent.scripted["/v1/health"]
        await recorder.until(lambda: recorder.connections[-1] == (True, ""))

    run_against(agent, scenario)


def test_an_answer_that_is_not_json():
    agent = FakeAgent(scripted={"/v1/health": html_page})

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        await recorder.until(lambda: len(recorder.failures()) >= 2)
        assert recorder.failures()[-1].startswith(f"{CANNOT_READ} (/v1/health: not JSON)")
        agent.scripted["/v1/health"] = agent.health
        agent.scripted["/v1/info"] = html_page  # an answer on /v1/info that is no JSON: not an agent at all
        await recorder.until(lambda: "not an edge agent" in recorder.connections[-1][1])
        assert "did not answer JSON on /v1/info (text/html)" in recorder.connections[-1][1]

    run_against(agent, scenario)


def test_hostile_websocket_messages_are_refused_one_by_one_and_the_channel_stays():
    agent = FakeAgent()

    async def telemetry(ws: web.WebSocketResponse) -> None:
        for text in (NESTED, '{"ts": 1e999}', json.dumps({"ts": 10**400}), "\x1b]0;title\x07",
                     json.dumps({"ts": agent.device_now(), "fps_inferred": 10.0})):
            await ws.send_str(text)

    async def stream(ws: web.WebSocketResponse) -> None:
        await ws.send_str(NESTED)
        await ws.send_bytes(agent_frame(agent))

    agent.scripted["/v1/telemetry"] = websocket_sending(telemetry, 0.1)
    agent.scripted["/v1/stream"] = websocket_sending(stream, 0.05)

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        session.set_stream_wanted(True)
        await recorder.until(lambda: len(recorder.live) >= 5 and len(recorder.frames) >= 5)
        assert recorder.connections[-1] == (True, "")  # garbage between good samples: still connected
        assert recorder.failures() == []
        errors = " | ".join(recorder.errors)
        assert f"telemetry: {CANNOT_READ} (a telemetry message: nested too deeply" in errors
        assert "\x1b" not in errors and "\x07" not in errors  # quoted, made visible
        assert all(isinstance(s["ts"], float) for s in recorder.live)  # neither 1e999 nor 10**400 got through
        assert "unexpected text message" in errors  # the stream's nested text message, refused as such
        assert recorder.streams[-1] == (True, "")

    run_against(agent, scenario)


def websocket_sending(send_round: Callable[[web.WebSocketResponse], Awaitable[None]], period_s: float):
    """A WebSocket handler that sends `send_round` every `period_s` while it reads what the console sends (so it
    sees the console's close and ends: a handler that only writes would outlive it)."""
    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def send() -> None:
            try:
                while not ws.closed:
                    await send_round(ws)
                    await asyncio.sleep(period_s)
            except (ConnectionError, aiohttp.ClientConnectionResetError):
                pass

        sender = asyncio.get_running_loop().create_task(send())
        try:
            async for _message in ws:
                pass
        finally:
            sender.cancel()
        return ws
    return handle


def agent_frame(agent: FakeAgent) -> bytes:
    return encode_frame_message(header_bytes(StreamHeader(1, agent.device_now(), "1", 64, 48)), b"\xff\xd8\xff\xd9")


def test_an_unexpected_failure_is_said_logged_once_and_retried(caplog):
    agent = FakeAgent()
    recorder = Recorder(fail_health=4)

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        await recorder.until(lambda: recorder.connections[-1:] == [(True, "")])
        failures = recorder.failures()
        assert len(failures) == 4
        for reason in failures:
            assert reason.startswith("unexpected failure while talking to the device (RuntimeError: listener bug)")
            assert "; retrying in " in reason
        logged = [r for r in caplog.records if "unexpected failure" in r.getMessage()]
        assert len(logged) == 1 and logged[0].exc_info is not None  # one traceback in the log, not one a retry

    with caplog.at_level(logging.ERROR, logger="edge_console.client.net.device_link"):
        run_against(agent, scenario, recorder)


# -- the source: every device answer goes through device_answers.py -------------------------------------------------

# Modules that parse JSON they wrote themselves (the console's own database and library files), never a device's.
OWN_DATA = {"releases/rollout.py", "releases/library.py", "store.py"}
THE_READER = "net/device_answers.py"


def device_answer_parsing(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls that parse or read what a peer sent other than through the bounded reader."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            if name in ("json", "receive_json"):  # aiohttp's resp.json(), msg.json(), ws.receive_json()
                found.append((node.lineno, f".{name}()"))
            elif name in ("loads", "load") and isinstance(owner, ast.Name) and owner.id in ("json", "bounded_json"):
                found.append((node.lineno, f"{owner.id}.{name}()"))
        if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr in ("read", "text"):  # await resp.read() / .text()
                found.append((node.lineno, f"await .{func.attr}()"))
        imported = ([node.module or ""] + [a.name for a in node.names] if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        if any(name.endswith("bounded_json") for name in imported):  # the reader's parser, used around it
            found.append((node.lineno, "imports bounded_json"))
    return found


def test_every_device_answer_goes_through_the_bounded_reader():
    offenders = []
    for path in sorted(CONSOLE_SOURCE.rglob("*.py")):
        relative = path.relative_to(CONSOLE_SOURCE).as_posix()
        if relative == THE_READER:
            continue
        for line, what in device_answer_parsing(ast.parse(path.read_text(), str(path))):
            if relative in OWN_DATA and what.startswith("json.load"):
                continue
            offenders.append(f"console/{relative}:{line}: {what}")
    assert offenders == [], ("parse device answers with console.net.device_answers (read_json, parse_json, "
                             "read_body), not:\n" + "\n".join(offenders))


def test_the_source_check_sees_each_way_of_parsing():
    sample = ast.parse("async def f(resp, ws, msg):\n"
                       "    await resp.json()\n    msg.json()\n    await ws.receive_json()\n    json.loads(b)\n"
                       "    await resp.read()\n    await resp.text()\n    bounded_json.loads(b)\n"
                       "from edge_console.core import bounded_json\nfrom edge_console.core.bounded_json import loads\n")
    assert [what for _, what in sorted(device_answer_parsing(sample))] == [
        ".json()", ".json()", ".receive_json()", "json.loads()", "await .read()", "await .text()",
        "bounded_json.loads()", "imports bounded_json", "imports bounded_json"]


# -- pushing a release: what the device answers along the way ---------------------------------------------------------

def tus_device(location: str, events: list[str]) -> web.Application:
    """A device taking an upload (tus) and an install, then sending `events` on its update socket."""
    received = bytearray()

    async def create(_request: web.Request) -> web.Response:
        return web.Response(status=201, headers={"Location": location})

    async def offset(_request: web.Request) -> web.Response:
        return web.Response(status=200, headers={"Upload-Offset": str(len(received))})

    async def patch(request: web.Request) -> web.Response:
        received.extend(await request.read())
        return web.Response(status=204, headers={"Upload-Offset": str(len(received))})

    async def install(_request: web.Request) -> web.Response:
        return web.json_response({"id": "20260101-000000-abcdef"}, status=202)

    async def record(_request: web.Request) -> web.Response:
        return web.json_response({"id": "20260101-000000-abcdef", "state": "staged", "steps": "not a list"})

    async def updates(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for text in events:
            await ws.send_str(text)
        async for _message in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_post("/v1/uploads", create)
    app.router.add_route("HEAD", "/v1/uploads/{id}", offset)
    app.router.add_patch("/v1/uploads/{id}", patch)
    app.router.add_post("/v1/updates", install)
    app.router.add_get("/v1/updates/events", updates)
    app.router.add_get("/v1/updates/{id}", record)
    return app


def push_to(app: web.Application, tmp_path: Path) -> tuple[BaseException | None, list]:
    from edge_console.client.releases.push import push

    release = tmp_path / "release.edgerelease"
    release.write_bytes(b"x" * 1000)  # the device here takes any bytes: what it answers is the point
    progress: list = []

    async def main() -> BaseException | None:
        async with serving(app) as address:
            try:
                async with aiohttp.ClientSession() as http:
                    await asyncio.wait_for(push(http, f"http://{address}", None, release,
                                                on_progress=progress.append), WAIT_S)
            except Exception as exc:  # the outcome under test
                return exc
        return None

    return asyncio.run(main()), progress


def test_a_push_goes_only_where_the_device_may_send_it(tmp_path):
    from edge_console.client.releases.push import PushFailed

    failure, _progress = push_to(tus_device("@127.0.0.2:1/v1/uploads/x", []), tmp_path)
    assert isinstance(failure, PushFailed)
    assert "an address the console does not use: @127.0.0.2:1/v1/uploads/x" in str(failure)


def test_a_nested_update_event_fails_the_push_with_its_reason(tmp_path):
    from edge_console.client.releases.push import PushFailed

    failure, progress = push_to(tus_device("/v1/uploads/u1", [NESTED]), tmp_path)
    assert isinstance(failure, PushFailed)
    assert str(failure).startswith(f"{CANNOT_READ} (an update event: nested too deeply")
    staged = [p for p in progress if p.phase == "staged"]
    assert staged and staged[0].detail == "staged"  # "steps" that is no list: the phase stands in, no TypeError


def test_numbers_no_reader_can_use_are_refused_as_out_of_range():
    from edge_console.client.net.device_answers import OUT_OF_RANGE, UnreadableAnswer, parse_json

    for text in ('{"ts": 1e999}', '{"ts": NaN}', '{"ts": %s}' % ("9" * 400), '{"ts": -%s}' % ("9" * 400)):
        with pytest.raises(UnreadableAnswer) as refused:
            parse_json(text, "a sample")
        assert refused.value.kind == OUT_OF_RANGE
    assert parse_json('{"ts": %s}' % ("9" * 300), "a sample")["ts"] == int("9" * 300)  # large, but a float can hold it
