"""The one way tests start a real agent: `python -m edge_console.agent.cli run` on 127.0.0.1, as its own process.

Secure by default, as on a site: TLS, pairing and roles on, and a console identity enrolled with `role` before the
agent starts (what `edge-agent enrol` does), so a test talks to it at once through `agent.session()`. The options
name what differs: `secure=False` (insecure lab mode, plain HTTP, for tests of the API itself), `console=None` (no
console paired: the pairing tests), `release_root` (a release authority it trusts), `settings` (its config file).

Its output goes to two log files beside the state folder (no pipe: no reader thread, no child blocked on a full
pipe); the port is read from its `edge-agent listening on URL name=... id=... fp=...` line, since agents start with
`--port 0`. Start, stop (`kill()` is kill -9, a power cut) and start again keep the state folder, hence the id;
`restart()` keeps the port too. A failed start raises with the end of the log, and a failing test gets the logs of
the agents started in it as report sections (tests/conftest.py).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.client.net.addresses import DeviceAddress
from edge_console.core.releases.trust import install_root
from edge_console.core.trust.tls_identity import TlsIdentity, client_context, load_or_create_identity

ROOT = Path(__file__).resolve().parents[2]
AGENT = [sys.executable, "-m", "edge_console.agent.cli"]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 90.0  # generous: a busy 2-core CI box imports onnxruntime and OpenCV and loads a model slowly
STOP_TIMEOUT_S = 20.0
LISTENING = re.compile(r"edge-agent listening on (?P<url>(?P<scheme>https?)://(?P<host>[\d.]+):(?P<port>\d+)) "
                       r"name=(?P<name>.*) id=(?P<id>[0-9a-f]+)(?: fp=(?P<fp>[0-9a-f]{64}))?$", re.MULTILINE)
OWN_CONSOLE = "own console"  # the default `console`: an identity of the agent's own, made beside its state folder
STARTED: weakref.WeakSet[Agent] = weakref.WeakSet()  # for the logs of a failing test (tests/conftest.py)


@dataclass(frozen=True)
class Listening:
    """What one `listening on` line said (a `simulate` process says it once per device)."""

    url: str
    host: str
    port: int
    name: str
    device_id: str
    fingerprint: str | None


class Agent:
    """One agent process. Made stopped; `start()` returns it once it listens."""

    def __init__(self, state_dir: Path, *, model: Path | str = "parts-v2", name: str = "Test camera",
                 secure: bool = True, console: TlsIdentity | str | None = OWN_CONSOLE, role: str = "admin",
                 release_root: bytes | None = None, settings: dict[str, object] | None = None,
                 fps: float | None = None, size: tuple[int, int] | None = None, source: str | None = None,
                 advertise: bool = False, port: int = 0, extra: Sequence[str] = (),
                 env: dict[str, str] | None = None, max_open_files: int | None = None, log_dir: Path | None = None,
                 before_start: Callable[[Path], None] | None = None,
                 on_started: Callable[[Agent], None] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.model, self.name, self.secure, self.role = model, name, secure, role
        if console == OWN_CONSOLE:  # in lab mode there is no pairing: no console is enrolled unless given
            console = load_or_create_identity(self.state_dir.with_name(f"{self.state_dir.name}-console"),
                                              "test console") if secure else None
        self.console: TlsIdentity | None = console  # type: ignore[assignment]
        self.release_root, self.settings = release_root, settings or {}
        self.fps, self.size, self.source, self.advertise = fps, size, source, advertise
        self.listen_port = port  # what it is told: 0 is any free port; `port` is the one it took
        self.extra = list(extra)
        self.env, self.max_open_files = env, max_open_files
        self.before_start, self.on_started = before_start, on_started
        # beside the state folder unless told (a test that fills the state's disk keeps its logs elsewhere)
        self.log_dir = Path(log_dir) if log_dir else self.state_dir.with_name(f"{self.state_dir.name}-logs")
        self.raw_args: list[str] | None = None  # set by `from_args`
        self.command_prefix: list[str] = []
        self.cwd = ROOT
        self.expect = 1
        self.listening: list[Listening] = []
        self.started_at = 0.0  # time.time() when it said it listened
        self._process: subprocess.Popen | None = None
        self._prepared = False

    @classmethod
    def from_args(cls, args: list[str], log_dir: Path, *, expect: int = 1, command: list[str] | None = None,
                  cwd: Path = ROOT, env: dict[str, str] | None = None) -> Agent:
        """An `edge-agent` command line as given (`simulate`, `--instance`, an installed program: `command`),
        with no state prepared; `expect` is how many devices it says it listens for."""
        agent = cls(log_dir, console=None, env=env, log_dir=log_dir)  # its state is wherever `args` say
        agent.raw_args, agent.expect, agent.cwd = list(args), expect, cwd
        agent.command_prefix = list(command or [])
        return agent

    # -- the command line and the state folder ---------------------------------------------------------------------

    def command(self) -> list[str]:
        if self.raw_args is not None:
            return [*(self.command_prefix or AGENT), *self.raw_args]
        args = [*AGENT, "run", "--model", str(self.model), "--state-dir", str(self.state_dir),
                "--port", str(self.listen_port), "--interface", LOOPBACK, "--name", self.name, "--threads", "1"]
        if self.fps is not None:
            args += ["--fps", f"{self.fps:g}"]
        if self.size is not None:
            args += ["--width", str(self.size[0]), "--height", str(self.size[1])]
        if self.source is not None:
            args += ["--source", self.source]
        if not self.advertise:
            args.append("--no-advertise")
        if not self.secure:
            args.append("--insecure-lab-mode")
        if self.settings:
            config = self.state_dir.with_name(f"{self.state_dir.name}-agent.toml")
            config.write_text("".join(f"{key} = {_toml(value)}\n" for key, value in self.settings.items()))
            args += ["--config", str(config)]
        return [*args, *self.extra]

    def _prepare_state(self) -> None:
        """What an installer and a pairing leave on the device before its first start."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.before_start is not None:
            self.before_start(self.state_dir)
        if self.release_root is not None:
            install_root(self.state_dir / "release-trust", self.release_root)
        if self.console is not None:
            store = TrustStore(self.state_dir)
            if store.by_fingerprint(self.console.fingerprint) is None:  # a role given earlier stays
                store.enrol("test console", self.console.cert_pem, self.role)

    # -- life cycle ---------------------------------------------------------------------------------------------

    def start(self, port: int | None = None) -> Agent:
        if self.running:
            raise RuntimeError(f"agent {self.name} is already running")
        if port is not None:
            self.listen_port = port
        if self.raw_args is None and not self._prepared:
            self._prepare_state()
            self._prepared = True
        self.log_dir.mkdir(parents=True, exist_ok=True)
        offsets = {stream: self._size(stream) for stream in ("stdout", "stderr")}
        env = dict(self.env if self.env is not None else os.environ, PYTHONUNBUFFERED="1")
        limit = self.max_open_files

        def limit_files() -> None:  # as systemd's LimitNOFILE would
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with open(self._log("stdout"), "ab") as out, open(self._log("stderr"), "ab") as err:
            self._process = subprocess.Popen(self.command(), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                             cwd=self.cwd, env=env, preexec_fn=limit_files if limit else None)
        STARTED.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            said = "".join(_whole_lines(self._read(stream, offsets[stream])) for stream in ("stdout", "stderr"))
            found = [_listening(m) for m in LISTENING.finditer(said)]
            if len(found) >= self.expect:
                break
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"agent {self.name} did not start (exit status {self._process.returncode}):\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.05)
        self.listening, self.started_at = found, time.time()
        if self.on_started is not None:
            self.on_started(self)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Stop it (SIGTERM: a clean shutdown); its exit status, None if it was never started."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> int | None:
        """kill -9: a power cut, nothing flushed, no goodbye."""
        return self.stop(signal.SIGKILL)

    def restart(self) -> Agent:
        """Stopped cleanly and started again on the same state folder and port (later starts keep that port too)."""
        self.stop()
        return self.start(port=self.port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the agent was never started"
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    # -- what it said about itself ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.listening[0].url

    @property
    def port(self) -> int:
        return self.listening[0].port

    @property
    def address(self) -> DeviceAddress:
        return DeviceAddress(self.listening[0].host, self.listening[0].port)

    @property
    def device_id(self) -> str:
        return self.listening[0].device_id

    @property
    def fingerprint(self) -> str | None:
        return self.listening[0].fingerprint

    def certificate(self) -> bytes:
        return (self.state_dir / "tls" / "identity.crt").read_bytes()

    @contextlib.asynccontextmanager
    async def session(self, identity: TlsIdentity | None | str = OWN_CONSOLE):
        """An aiohttp session presenting the enrolled console (or `identity`; None: no client certificate) and
        accepting only this agent's certificate."""
        who = self.console if identity == OWN_CONSOLE else identity
        context = client_context(who, self.certificate()) if self.secure else None
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            yield session

    # -- its logs -----------------------------------------------------------------------------------------------

    def _log(self, stream: str) -> Path:
        return self.log_dir / f"agent.{stream}.log"

    def _size(self, stream: str) -> int:
        path = self._log(stream)
        return path.stat().st_size if path.exists() else 0

    def _read(self, stream: str, offset: int = 0) -> str:
        path = self._log(stream)
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def stdout_lines(self) -> list[str]:
        """Every line it wrote to stdout, over all its starts."""
        return self._read("stdout").splitlines(keepends=True)

    def stderr_lines(self) -> list[str]:
        """Every line it wrote to stderr (its log), over all its starts."""
        return self._read("stderr").splitlines(keepends=True)

    def log(self) -> str:
        return self._read("stdout") + self._read("stderr")


def _whole_lines(text: str) -> str:
    """`text` up to its last newline: a line still being written (print writes its end separately) could match
    the `listening` pattern with its fingerprint, or the end of its port, still missing."""
    return text[:text.rfind("\n") + 1]


def _listening(match: re.Match) -> Listening:
    return Listening(match["url"], match["host"], int(match["port"]), match["name"], match["id"], match["fp"])


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no TOML form for {value!r} in a test's agent settings")


def agent_cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`edge-agent ...` as typed on the device's own terminal; the result, whatever its exit status."""
    return subprocess.run([*AGENT, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def pairing_code(state_dir: Path, role: str) -> str:
    """A one-time code, as `edge-agent pair` prints it on the device's own terminal."""
    result = agent_cli("pair", "--role", role, "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stderr
    return result.stdout.split(": ", 1)[1].split()[0]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_exc!r})")


def stalled_websocket(port: int) -> socket.socket:
    """A client that completes the WebSocket handshake and then never reads another byte."""
    sock = socket.create_connection((LOOPBACK, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/stream?max_fps=60 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock
