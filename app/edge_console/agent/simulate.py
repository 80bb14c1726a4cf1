"""A fleet of real agent processes on this machine, with distinct names, scenes, models and speeds.

It is the console's demo and the backbone of the integration tests: each device is a real `edge-agent run`
process serving real HTTP/WebSocket and mDNS, with the synthetic conveyor camera.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.core.paths import demo_model
from edge_console.core.releases.trust import install_root

# (name, model, injected delay ms): one line runs the older parts-v1, one has slower "hardware".
PROFILES = (
    ("Press line 1", "parts-v2", 0),
    ("Packing line 2", "parts-v1", 0),
    ("Paint shop 3", "parts-v2", 60),
    ("Assembly 4", "parts-v2", 0),
)


# A simulated device's probation is short, so a new user sees a pushed release pass it, and can roll it back, in
# the demo's first minute (a real device keeps the 60 s default, or its own agent.toml).
SIMULATED_CONFIG = "probation_s = 20\n"


def agent_command(index: int, interfaces: list[str], base_dir: Path, fps: float) -> list[str]:
    name, model, delay = PROFILES[index % len(PROFILES)]
    if index >= len(PROFILES):
        name = f"{name.rsplit(' ', 1)[0]} {index + 1}"
    cmd = [sys.executable, "-m", "edge_console.agent.cli", "run", "--source", "synthetic", "--seed", str(index),
           "--model", str(demo_model(model)), "--name", name, "--port", "0", "--fps", str(fps), "--threads", "1",
           "--state-dir", str(base_dir / f"device-{index + 1}"), "--injected-delay-ms", str(delay),
           "--parent-pid", str(os.getpid())]
    if (base_dir / "simulated.toml").exists():  # written by run_fleet
        cmd += ["--config", str(base_dir / "simulated.toml")]
    for addr in interfaces:
        cmd += ["--interface", addr]
    return cmd


def _relay(proc: subprocess.Popen) -> None:
    for line in proc.stdout:
        print(line, end="", flush=True)


def enrol_console(state_dir: Path, certificate: Path) -> None:
    """Pair a simulated device with the console that started the simulator, as admin, through the files on this
    machine (the demo must show everything with no prompt; a real device pairs by code)."""
    TrustStore(state_dir).enrol("demo console", certificate.read_bytes(), "admin")


def run_fleet(count: int, interfaces: list[str], base_dir: Path | None, fps: float,
              console_certificate: Path | None = None, release_root: Path | None = None) -> int:
    if count < 1:
        raise ValueError("--count must be at least 1")
    base = base_dir or Path(tempfile.mkdtemp(prefix="edge-simulate-"))
    base.mkdir(parents=True, exist_ok=True)
    (base / "simulated.toml").write_text(SIMULATED_CONFIG)
    for i in range(count):
        state = base / f"device-{i + 1}"
        if console_certificate is not None:
            enrol_console(state, console_certificate)
        if release_root is not None:  # the demo's release authority, so the console can push it a release
            install_root(state / "release-trust", release_root.read_bytes())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    procs = [subprocess.Popen(agent_command(i, interfaces, base, fps), stdout=subprocess.PIPE, text=True)
             for i in range(count)]
    for p in procs:
        threading.Thread(target=_relay, args=(p,), daemon=True).start()
    print(f"edge-agent simulate: {count} devices starting (state in {base}); Ctrl-C stops them", flush=True)
    failed, reported = 0, set()
    while not stop.wait(0.5):
        for i, p in enumerate(procs):
            if p.poll() is not None and i not in reported:
                reported.add(i)
                print(f"edge-agent simulate: device {i + 1} exited with code {p.returncode}", file=sys.stderr,
                      flush=True)
        if len(reported) == len(procs):
            failed = 1  # every device died: nothing left to simulate
            break
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=8)
        except subprocess.TimeoutExpired:
            p.kill()
    return failed
