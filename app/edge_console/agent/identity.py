"""Who this device is: a stable id kept on disk, and the hardware it reports."""

from __future__ import annotations

import os
import platform
import uuid
from pathlib import Path

import psutil

from edge_console.core.atomic_files import write_atomic
from edge_console.core.detection.onnx_runtime import available_providers


def default_state_root() -> Path:
    """The folder that holds one state folder per agent instance (id, telemetry history, model store).

    EDGE_AGENT_STATE_ROOT, else systemd's STATE_DIRECTORY (the unit's `StateDirectory=`), else the XDG state home.
    """
    if env := os.environ.get("EDGE_AGENT_STATE_ROOT") or os.environ.get("STATE_DIRECTORY"):
        return Path(env.split(":")[0])  # systemd lists several folders with ':' when the unit names several
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "edge-agent"


class StateDirInUse(OSError):
    """Another agent runs on this state folder: two agents must never share an identity and a history."""


def lock_state_dir(state_dir: Path):
    """Hold an exclusive lock on `state_dir` for the life of the process; StateDirInUse if another agent has it.

    An advisory `flock` is released by the kernel when the process dies, even on kill -9, so a crash never leaves
    a stale lock behind. Returns the open lock file; keep it referenced while the agent runs."""
    import fcntl

    state_dir.mkdir(parents=True, exist_ok=True)
    handle = open(state_dir / "agent.lock", "a+")  # noqa: SIM115 - held open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise StateDirInUse(f"state folder {state_dir} is in use by another agent (pid {holder}). Each agent on a "
                            "host needs its own identity: give it its own --instance NAME (or --state-dir).") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def device_id(state_dir: Path) -> str:
    """Created on first run and kept: the console recognises a device by it across renames and address changes."""
    path = state_dir / "device_id"
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    new = uuid.uuid4().hex
    write_atomic(path, (new + "\n").encode())  # a crash never leaves a half-written id
    return new


def _cpu_model() -> str:
    # x86 says "model name"; Arm boards say "Hardware" or "Model" (e.g. "Raspberry Pi 4 Model B"). On x86,
    # "model" is a bare family number, so it only counts when nothing better is there.
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
        for key in ("model name", "hardware", "model"):
            if fields.get(key) and not fields[key].isdigit():
                return fields[key]
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(provider_in_use: str) -> dict:
    return {
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_mb": round(psutil.virtual_memory().total / 2**20),
        "providers_available": available_providers(),
        "provider": provider_in_use,
    }


def read_temperature_c() -> float | None:
    """The hottest CPU/SoC sensor, or None when the hardware exposes none (never a made-up number)."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        sensors = reader()
    except Exception:
        return None
    values = [t.current for entries in sensors.values() for t in entries if t.current and 0 < t.current < 150]
    return round(max(values), 1) if values else None
