"""The site's devices: real `edge-agent run` processes, each in its own network namespace, with TLS and pairing on
(`insecure_lab_mode = false`), trusting the trial's release authority and paired with the trial's console.

A device keeps its state folder across restarts (kill -9 and start again is a power cut and a reboot). Clock skew
is libfaketime (LD_PRELOAD, FAKETIME="+6h"): the agent's wall clock moves. Its monotonic clock is faked too (it then
reads as the faked wall clock, and still only moves forward): with FAKETIME_DONT_FAKE_MONOTONIC, libfaketime's
clock_nanosleep fails Python's time.sleep with EINVAL, which stopped the skewed devices' camera in earlier runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

from edge_console.core.paths import demo_model
from tests.support.agent_harness import AGENT, Agent
from tests.support.agent_harness import agent_cli as harness_cli

from .netns import Site

PORT = 8470
FAKETIME_LIB = next((p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                                 "/usr/lib/faketime/libfaketime.so.1") if Path(p).exists()), None)


def faketime_env(offset: str) -> dict[str, str]:
    """Environment that moves a process's clocks by `offset` ("+6h", "-3d"); see the module docstring."""
    return {"LD_PRELOAD": FAKETIME_LIB or "", "FAKETIME": offset, "FAKETIME_NO_CACHE": "1"}


def agent_cli(*args: str, check: bool = True) -> str:
    """`edge-agent ...` on a device's own terminal (no network: its state folder only)."""
    proc = harness_cli(*args)
    if check and proc.returncode != 0:
        raise RuntimeError(f"edge-agent {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Device:
    """One device of the site: namespace, address, state folder and (while running) its agent process."""

    def __init__(self, site: Site, index: int, *, fps: float, probation_s: float, root_json: Path,
                 console_cert: Path, name: str | None = None) -> None:
        self.site = site
        self.index = index
        self.ns = site.device_ns[index]
        self.addr = site.device_addr[index]
        self.port = PORT
        self.name = name or f"Line {index + 1:02d} camera"
        self.folder = site.dir / "devices" / f"d{index:02d}"
        self.state = self.folder / "state"
        self.fps = fps
        self.faketime: str | None = None  # e.g. "+6h": the device's clock is off by that much
        self.agent: Agent | None = None
        self.id = ""
        self.fingerprint = ""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = self.folder / "agent.toml"
        self.config.write_text(f"insecure_lab_mode = false\nprobation_s = {probation_s}\n")
        self.root_json = root_json
        self.console_cert = console_cert
        self.prepare_state()

    def prepare_state(self) -> None:
        """What an installer does once: trust the release authority, enrol the site's console (operator)."""
        self.state.mkdir(parents=True, exist_ok=True)
        agent_cli("trust-root", str(self.root_json), "--state-dir", str(self.state))

    def enrol_console(self, role: str = "operator") -> None:
        agent_cli("enrol", "--certificate", str(self.console_cert), "--role", role, "--name", "field-trial console",
                  "--state-dir", str(self.state))

    @property
    def host_port(self) -> str:
        return f"{self.addr}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host_port}"

    @property
    def certificate(self) -> bytes:
        return (self.state / "tls" / "identity.crt").read_bytes()

    def args(self) -> list[str]:
        return ["run", "--model", "parts-v1", "--source", "synthetic", "--port", str(self.port), "--interface",
                self.addr, "--state-dir", str(self.state), "--config", str(self.config), "--name", self.name,
                "--threads", "1", "--fps", f"{self.fps:g}", "--width", "320", "--height", "240",
                "--seed", str(100 + self.index), "--parent-pid", str(os.getpid())]

    def env(self) -> dict:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        if self.faketime:
            if FAKETIME_LIB is None:
                raise RuntimeError("libfaketime is not installed (apt-get install faketime)")
            env.update(faketime_env(self.faketime))
        return env

    def start(self) -> float:
        """Start the agent; returns the seconds until it listened (and announced)."""
        t0 = time.monotonic()
        self.agent = Agent.from_args(self.args(), self.folder / "logs", env=self.env(),
                                     command=[*self.site.exec_prefix(self.ns), *AGENT]).start()
        self.id, self.fingerprint = self.agent.device_id, self.agent.fingerprint or ""
        return time.monotonic() - t0

    @property
    def running(self) -> bool:
        return self.agent is not None and self.agent.running

    def kill(self) -> None:
        """Power cut: SIGKILL, nothing flushed, no mDNS goodbye."""
        if self.agent is not None:
            self.agent.kill()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): the agent says goodbye over mDNS."""
        if self.agent is not None:
            self.agent.stop(signal.SIGTERM)

    def restart(self) -> float:
        self.kill()
        return self.start()

    # -- what is on the device's disk ---------------------------------------------------------------------------
    def lifecycle(self) -> dict:
        path = self.state / "models" / "lifecycle.json"
        return json.loads(path.read_text()) if path.exists() else {"active": None, "retained": [], "highest": {}}

    def records(self) -> list[dict]:
        out = []
        for path in sorted((self.state / "updates").glob("*/state.json")):
            with contextlib.suppress(ValueError, OSError):
                out.append(json.loads(path.read_text()))
        return out

    def audit_entries(self) -> list[dict]:
        from edge_console.core.audit.log import AuditLog

        return AuditLog(self.state / "audit.log").entries()

    def store_snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file under models/ (the store and lifecycle.json) with its size and sha256."""
        out = {}
        root = self.state / "models"
        for path in sorted(root.rglob("*")) if root.exists() else []:
            rel = str(path.relative_to(root))
            out[rel] = (path.stat().st_size, sha256_file(path)) if path.is_file() else (-1, "dir")
        return out

    def expected_model_sha(self) -> str:
        """The sha256 of the model the lifecycle says runs (the factory parts-v1 when none is active)."""
        active = self.lifecycle().get("active")
        return active["sha256"] if active else sha256_file(demo_model("parts-v1"))

    def verified_models(self) -> dict[str, str]:
        """sha256 -> label of every model this device may legitimately run: the factory one and every model in
        the store whose file still matches the hash it was verified with."""
        out = {sha256_file(demo_model("parts-v1")): "parts-v1 (factory)"}
        lc = self.lifecycle()
        for m in [lc.get("active"), lc.get("previous"), *lc.get("retained", [])]:
            if m and not m.get("factory") and Path(m["path"]).is_file() and sha256_file(Path(m["path"])) == m["sha256"]:
                out[m["sha256"]] = f"{m['line']} {m['version']}"
        return out

    def remove_state(self) -> None:
        shutil.rmtree(self.state, ignore_errors=True)
