"""The built-in demo: a simulated fleet of agents on 127.0.0.1 that lives exactly as long as the console.

The fleet is the agent's own `simulate` command in a child process (real agents, real HTTP, WebSocket and
mDNS), bound to the loopback interface so a demo never announces anything on the site's network.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .net.addresses import DeviceAddress

DEMO_INTERFACE = "127.0.0.1"
_LISTENING = re.compile(r"listening on http://(?P<host>[^:\s/]+):(?P<port>\d+)(?: name=(?P<name>.*?))?(?: id=(?P<id>\S+))?$",
                        re.MULTILINE)


class SimulatedFleet:
    """`python -m edge_console.agent.cli simulate --count N --interface 127.0.0.1`, with its output in a log file.

    Output goes to a file rather than a pipe so no reader thread is needed and a chatty child can never block on
    a full pipe. The child runs in its own process group, so stopping it also reaches its agents.
    """

    def __init__(self, count: int = 3, fps: float = 15.0, base_dir: Path | None = None) -> None:
        self.count = count
        self.fps = fps
        self._own_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="edge-console-demo-"))
        self.log_path = self.base_dir / "simulate.log"
        self._process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "edge_console.agent.cli", "simulate", "--count", str(self.count),
                "--interface", DEMO_INTERFACE, "--base-dir", str(self.base_dir / "devices"), "--fps", str(self.fps)]

    def start(self) -> SimulatedFleet:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def listening(self) -> list[tuple[DeviceAddress, str, str]]:
        """The devices that have said they are serving so far: (address, name, id)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [(DeviceAddress(m["host"], int(m["port"])), (m["name"] or "").strip(), m["id"] or "")
                for m in _LISTENING.finditer(text)]

    def device_ids(self) -> set[str]:
        """Ids of this fleet's devices that have started, so the demo can ignore other loopback agents (a shared
        development machine may run other people's simulators on 127.0.0.1 too)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return set()
        return {m["id"] for m in _LISTENING.finditer(text) if m["id"]}

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # simulate stops its agents on SIGTERM
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(5)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
