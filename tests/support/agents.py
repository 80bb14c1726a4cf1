"""Start and stop real agent processes (and simulated fleets) on 127.0.0.1 for tests."""

from __future__ import annotations

import base64
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"edge-agent listening on (https?://[\d.]+:(\d+)) name=(.*) id=([0-9a-f]+)"
                       r"(?: fp=([0-9a-f]{64}))?$")
START_TIMEOUT_S = 60.0  # generous: a busy 2-core CI box imports onnxruntime and OpenCV slowly


class AgentProcess:
    """A real `edge-agent run` (or `simulate`) process; lines of its stdout are collected as they come."""

    def __init__(self, args: list[str], expect: int = 1, max_open_files: int | None = None,
                 command: list[str] | None = None, cwd: Path = ROOT, env: dict | None = None):
        env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")

        def limit_files() -> None:  # as systemd's LimitNOFILE would
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))

        command = command or [sys.executable, "-m", "edge_console.agent.cli"]
        self.proc = subprocess.Popen([*command, *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=limit_files if max_open_files else None)
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.agents: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True).start()
        self.wait_for_agents(expect)

    def _read(self, stream, sink: list[str]) -> None:
        for line in stream:
            with self._cond:
                sink.append(line)
                if m := LISTENING.search(line):
                    self.agents.append({"url": m.group(1), "port": int(m.group(2)), "name": m.group(3),
                                        "id": m.group(4), "fingerprint": m.group(5)})
                self._cond.notify_all()

    def wait_for_agents(self, n: int, timeout: float = START_TIMEOUT_S) -> None:
        if n == 0:
            return
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.agents) >= n or self.proc.poll() is not None, timeout)
        if len(self.agents) < n:
            self.stop()
            raise RuntimeError(f"agent did not start (ok={ok}, rc={self.proc.returncode}):\n{''.join(self.stderr)[-3000:]}")

    @property
    def url(self) -> str:
        return self.agents[0]["url"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def agent_args(model: Path, state_dir: Path, *extra: str, name: str = "Test camera", secure: bool = False) -> list[str]:
    """`edge-agent run` on 127.0.0.1. Tests of the API itself talk plain HTTP (`--insecure-lab-mode`); tests of
    trust, updates and anything a console does on a site pass `secure=True` (TLS, pairing, roles: the default)."""
    lab = [] if secure else ["--insecure-lab-mode"]
    return ["run", "--model", str(model), "--state-dir", str(state_dir), "--port", "0", "--interface", "127.0.0.1",
            "--name", name, "--threads", "1", *lab, *extra]


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
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/stream?max_fps=60 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock
