"""Real agent processes for the console tests: `python -m edge_console.agent.cli run`, on 127.0.0.1 only.

Output goes to a log file (no pipe, so no reader thread and no child blocked on a full pipe); the port is read
from the `edge-agent listening on https://127.0.0.1:PORT` line, since agents start with `--port 0`.

Trust, as on a site, without a person typing codes: before an agent starts, the tests' console identity is
enrolled on it as admin (`TrustStore.enrol`, what `edge-agent enrol` does), and once it listens every live test
fleet pins its certificate (`TEST_TRUST.agent_started`), exactly as the console does after a pairing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge_console.client.net.addresses import DeviceAddress
from edge_console.core.paths import demo_model
from edge_console.core.releases.trust import install_root

from .trust_setup import TEST_TRUST

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 90.0  # generous: the box has 2 shared cores and an agent loads onnxruntime and a model
_LISTENING = re.compile(r"listening on (?P<scheme>https?)://(?P<host>[\d.]+):(?P<port>\d+)(?: name=(?P<name>.*?))?"
                        r"(?: id=(?P<id>[0-9a-f]+))?(?: fp=(?P<fp>[0-9a-f]{64}))?$", re.MULTILINE)


def model_for_tests() -> Path:
    model = demo_model("parts-v2")
    if not model.exists():
        raise FileNotFoundError(f"{model} is missing; the console tests need the demo model (see models/README)")
    return model


class AgentProcess:
    """One `edge-agent run` on loopback (synthetic camera and parts-v2 unless told otherwise); start/stop/restart
    keep the same state dir (same id)."""

    def __init__(self, name: str, state_dir: Path, *, fps: float = 10.0, advertise: bool = True,
                 port: int = 0, model: Path | None = None, source: str = "synthetic",
                 enrol: bool = True, release_root: bytes | None = None) -> None:
        self.enrol = enrol  # False: an agent this console is not paired with
        self.release_root = release_root  # a release authority's root.json the agent trusts
        self.name = name
        self.model = model
        self.source = source
        self.state_dir = state_dir
        self.fps = fps
        self.advertise = advertise
        self.port = port
        self.address: DeviceAddress | None = None
        self.device_id: str | None = None
        self.started_at = 0.0  # when it said it was serving (time.time())
        self._process: subprocess.Popen | None = None
        self._log_path = state_dir / "agent.log"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "edge_console.agent.cli", "run", "--source", self.source,
               "--model", str(self.model or model_for_tests()),
               "--name", self.name, "--port", str(self.port), "--interface", LOOPBACK,
               "--state-dir", str(self.state_dir), "--fps", str(self.fps), "--threads", "1"]
        return cmd + ([] if self.advertise else ["--no-advertise"]) + ["--config", str(TEST_TRUST.secure_config())]

    def certificate(self) -> bytes:
        return (self.state_dir / "tls" / "identity.crt").read_bytes()

    def start(self, port: int | None = None) -> AgentProcess:
        if port is not None:
            self.port = port
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.enrol:
            TEST_TRUST.enrol_on(self.state_dir)
        if self.release_root is not None:
            install_root(self.state_dir / "release-trust", self.release_root)
        offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self._log_path.read_bytes()[offset:].decode(errors="replace")
            match = _LISTENING.search(text)
            if match:
                self.address = DeviceAddress(match["host"], int(match["port"]))
                self.device_id = match["id"] or self.device_id
                self.started_at = time.time()
                if self.enrol and match["fp"]:
                    TEST_TRUST.agent_started(self)
                return self
            if self._process.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited with {self._process.returncode}:\n{text[-2000:]}")
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"agent {self.name} did not start in {STARTUP_TIMEOUT_S} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""
