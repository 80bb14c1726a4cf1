"""Issue 21 item 8, on the command line: a hostile device (a real HTTP(S) server on 127.0.0.1) answering nested JSON,
or text full of terminal escapes, carriage returns and right-to-left marks, against each command that prints what a
device (or, on the device, a console) said. Each command ends with one clear line and a non-zero status, never a
traceback; every piece of device text reaches the terminal escaped (\\x1b, \\r, \\u202e), none of it raw.

The commands run as the user runs them, in their own process (`python -m edge_console.console.cli ...`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from edge_console.core.terminal_text import for_terminal
from edge_console.core.trust.tls_identity import load_or_create_identity, server_context
from tests.support.agent_harness import ROOT
from tests.support.fake_devices import FakeDeviceServer
from tests.support.updates import build

CONSOLE = [sys.executable, "-m", "edge_console.console.cli"]
AGENT = [sys.executable, "-m", "edge_console.agent.cli"]
NESTED = "[" * 100_000 + "]" * 100_000
CANNOT_READ = "the device sent an answer the console cannot read"
HOSTILE = "Evil\x1b]0;owned\x07 \x1b[2Jcam\rera \u202egnp.exe \u2066x\u2069 \x9b31m"
RAW = ("\x1b", "\x07", "\r", "\u202e", "\u2066", "\u2069", "\x9b")  # none of these may reach the terminal


def run(command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          encoding="utf-8", errors="surrogateescape")


def assert_one_clear_line(result: subprocess.CompletedProcess, *needles: str, status: int | None = None) -> str:
    """A failure told in one line on stderr, with a non-zero status and no traceback; returns the line."""
    assert result.returncode != 0 if status is None else result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert_no_raw(lines[0])
    return lines[0]


def assert_no_raw(text: str) -> None:
    assert not any(ch in text for ch in RAW), ascii(text)


class HostileDevice:
    """A device in lab mode (plain HTTP) or a TLS endpoint (pairing), answering what `answers` holds for each
    `METHOD /path`: a dict (JSON), a str (sent as is), or (status, body[, headers]); uploads (tus PATCH, HEAD) are
    taken whole. Served from a thread of its own (tests/support/fake_devices.py)."""

    def __init__(self, answers: dict[str, object], tls_folder: Path | None = None) -> None:
        self.answers = answers
        tls = server_context(load_or_create_identity(tls_folder, "hostile"), []) if tls_folder else None
        app = web.Application(client_max_size=64 * 2**20)  # a push's upload chunks are 4 MiB
        app.router.add_route("*", "/{path:.*}", self._answer)
        self._server = FakeDeviceServer(app, tls)
        self.uploaded = 0

    def __enter__(self) -> HostileDevice:
        self._server.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        if key.startswith("PATCH /v1/uploads/") or key.startswith("HEAD /v1/uploads/"):
            self.uploaded += len(await request.read())  # tus: take every byte, say how many
            return web.Response(status=204, headers={"Upload-Offset": str(self.uploaded), "Tus-Resumable": "1.0.0"})
        answer = self.answers.get(key)
        if answer is None:
            return web.json_response({"error": "not found"}, status=404)
        status, body, headers = (answer + ({},))[:3] if isinstance(answer, tuple) else (200, answer, {})
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="application/json", headers=headers)
        return web.json_response(body, status=status, headers=headers)


def lab_info(name: str = "Line 5", model: str = "parts-v2") -> dict:
    return {"id": "hostile01", "name": name, "api_version": 1, "agent_version": "9.9.9", "insecure_lab_mode": True,
            "hardware": {"arch": "x86_64"}, "model": {"name": model, "version": "2.0.0", "classes": ["bolt"]},
            "source": {"kind": "synthetic"}}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "console"


def console(data: Path, *args: str) -> subprocess.CompletedProcess:
    """`edge-console ...` with this test's data folder (compare takes it after its name, the others before)."""
    if args[0] == "compare":
        return run(CONSOLE, "compare", "--data-dir", str(data), *args[1:])
    return run(CONSOLE, "--data-dir", str(data), *args)


# -- compare --------------------------------------------------------------------------------------------------------

def test_compare_with_nested_info_says_so_in_one_line(data):
    with HostileDevice({"GET /v1/info": NESTED}) as device:
        result = console(data, "compare", "--device", device.address, "--frames", "1")
    assert_one_clear_line(result, f"{CANNOT_READ} (/v1/info: nested too deeply", status=3)


def test_compare_escapes_the_model_name_a_device_gives(data):
    with HostileDevice({"GET /v1/info": lab_info(model=HOSTILE)}) as device:
        result = console(data, "compare", "--device", device.address, "--frames", "1")
    line = assert_one_clear_line(result, "no local copy of the device's model", status=2)
    assert for_terminal(HOSTILE) in line  # every character of the name is there, escaped
    assert "\\x1b]0;owned\\x07" in line and "\\r" in line and "\\u202e" in line and "\\x9b" in line


# -- pairings, pair -------------------------------------------------------------------------------------------------

def test_pairings_with_a_nested_listing_says_so_in_one_line(data):
    with HostileDevice({"GET /v1/info": lab_info(), "GET /v1/pairings": NESTED}) as device:
        result = console(data, "pairings", device.address)
    assert_one_clear_line(result, f"{CANNOT_READ} (/v1/pairings: nested too deeply", status=2)


def test_pairings_prints_console_names_escaped(data):
    listing = {"pairings": [{"id": "p1", "role": "admin", "fingerprint": "ab" * 32, "console_name": HOSTILE},
                            {"id": "p2", "role": ["not", "text"], "fingerprint": 7, "console_name": None}]}
    with HostileDevice({"GET /v1/info": lab_info(), "GET /v1/pairings": listing}) as device:
        shown = console(data, "pairings", device.address)
        as_json = console(data, "pairings", device.address, "--json")
    assert shown.returncode == 0, shown.stderr
    assert_no_raw(shown.stdout)
    assert for_terminal(HOSTILE) in shown.stdout.splitlines()[0]
    assert len(shown.stdout.strip().splitlines()) == 2  # one line a pairing: the CR split nothing
    assert as_json.returncode == 0 and not any(ch in as_json.stdout for ch in RAW)
    assert json.loads(as_json.stdout)[0]["console_name"] == HOSTILE  # escaped as JSON, and exactly the name


@pytest.mark.parametrize("answer, needle", [
    ((200, NESTED), f"{CANNOT_READ} (/v1/pair/start: nested too deeply"),
    ((409, {"error": "no code", "detail": HOSTILE}), "the device has no pairing code open: Evil"),
], ids=["nested", "escapes-in-the-refusal"])
def test_pair_with_a_hostile_device_says_so_in_one_line(data, tmp_path, answer, needle):
    with HostileDevice({"POST /v1/pair/start": answer}, tls_folder=tmp_path / "device-tls") as device:
        result = console(data, "pair", device.address, "--code", "1234-5678")
    assert_one_clear_line(result, needle, status=2)


# -- rollback, push, audit ------------------------------------------------------------------------------------------

def test_rollback_with_a_nested_answer_says_so_in_one_line(data):
    with HostileDevice({"GET /v1/info": lab_info(), "POST /v1/models/rollback": NESTED}) as device:
        result = console(data, "rollback", "--device", device.address)
    assert_one_clear_line(result, f"{CANNOT_READ} (/v1/models/rollback: nested too deeply", status=2)


def test_rollback_prints_what_the_device_runs_escaped(data):
    running = {"running": {"name": HOSTILE, "version": "1.0.0"}}
    with HostileDevice({"GET /v1/info": lab_info(), "POST /v1/models/rollback": running}) as device:
        result = console(data, "rollback", "--device", device.address, "--json")
        said = console(data, "rollback", "--device", device.address)
    assert result.returncode == 0, result.stderr
    assert_no_raw(result.stdout)
    assert json.loads(result.stdout)["name"] == HOSTILE
    assert said.returncode == 0 and said.stdout.startswith("Line 5 rolled back: it runs") and len(
        said.stdout.splitlines()) == 1


def test_push_to_a_hostile_device_fails_its_step_with_one_line_each(data, tmp_path):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    bundle = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(tmp_path / "golden", count=2), tmp_path)
    release = authority.sign(bundle, tmp_path / "parts-2.0.0.edgerelease")
    (tmp_path / "root.json").write_bytes(authority.root_json())
    assert console(data, "release", "trust", str(tmp_path / "root.json")).returncode == 0
    assert console(data, "release", "import", str(release)).returncode == 0
    keys = sorted(k[:16] for k in json.loads(authority.root_json())["signed"]["keys"])
    answers = {"GET /v1/info": lab_info(name=HOSTILE),
               # what the console judges it by first: it has had no parts, and trusts the release's authority
               "GET /v1/models": {"running": {"line": "parts-v2", "version": "1.0.0"}, "highest": {}},
               "GET /v1/release-trust": {"installed": True, "root_version": 1, "keys": keys},
               "POST /v1/uploads": (201, "", {"Location": "/v1/uploads/u1", "Tus-Resumable": "1.0.0"}),
               "POST /v1/updates": (202, NESTED)}  # the upload goes through; the answer to "install it" is hostile
    with HostileDevice(answers) as device:
        result = console(data, "push", "--release", "parts:2.0.0", "--devices", device.address)
    assert result.returncode == 1, result.stderr  # the rollout ran and failed: "done but something failed"
    assert "Traceback" not in result.stdout + result.stderr
    assert_no_raw(result.stdout + result.stderr)
    assert for_terminal(HOSTILE) in result.stdout
    assert f"{CANNOT_READ} (/v1/updates: nested too deeply" in result.stdout


def test_audit_export_with_a_nested_log_says_which_device_and_why(data):
    answers = {"GET /v1/info": lab_info(), "GET /v1/audit/verify": {"signed_head": None}, "GET /v1/audit": NESTED}
    with HostileDevice(answers) as device:
        result = console(data, "audit", "export", "--devices", device.address)
    assert result.returncode == 1, result.stderr  # exported, but a device's log is missing from it
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot read its audit log: {CANNOT_READ} (/v1/audit: nested too deeply" in lines[0]
    assert json.loads(result.stdout)["chains"][0]["source"] == "console"  # the console's own log is still there


# -- edge-agent, printing what consoles said --------------------------------------------------------------------

def test_agent_pairings_prints_console_names_escaped(tmp_path):
    state = tmp_path / "device"
    identity = load_or_create_identity(tmp_path / "console-tls", "console")
    TrustStore(state).enrol(HOSTILE, identity.cert_pem, "viewer")
    result = run(AGENT, "pairings", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    assert_no_raw(result.stdout)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(for_terminal(HOSTILE))


def test_for_terminal_escapes_what_acts_and_keeps_what_reads():
    assert for_terminal("a\x1b[31mb\rc\x07\x00\x7f\x85\x9b") == "a\\x1b[31mb\\rc\\x07\\x00\\x7f\\x85\\x9b"
    assert for_terminal("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c") == (
        "\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c")
    assert for_terminal("line\nnext\u2028\ud800") == "line\\nnext\\u2028\\ud800"
    assert for_terminal("a\nb\r\n", keep_newlines=True) == "a\nb\\r\n"
    kept = "Größe 温度 شاشة 👩\u200d🔧 tab-free"
    assert for_terminal(kept) == kept  # letters of any script, emoji joined by ZWJ: as they are
    assert for_terminal("x" * 50, 10) == "x" * 9 + "…"
