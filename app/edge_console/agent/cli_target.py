"""Which agent a command on the device's terminal acts on, said before it acts.

`edge-agent pair`, `trust-root`, `install` and the rest work on an agent's state folder: the running agent picks
their changes up from there. Given no `--instance`/`--state-dir`, they use the default instance's folder, which
may be one no running agent uses (a service started with its own instance, or as another user): the change would
"succeed" and do nothing. So each command says which folder it acts on and whether an agent runs there, and when
none does, which agents do run on this host.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_console.agent.config import build_config
from edge_console.agent.identity import default_state_root


def state_dir_of(args) -> Path:
    overrides = {k: v for k in ("instance", "state_dir") if (v := getattr(args, k, None)) is not None}
    return Path(build_config(getattr(args, "config", None), {"model": "unused", **overrides},
                             validate_model=False).state_dir)


def running_agent_pid(state_dir: Path) -> int | None:
    """The pid of the agent serving `state_dir`, if one runs (read from its lock file, checked alive)."""
    try:
        pid = int((state_dir / "agent.lock").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"edge_console.agent" in cmdline or b"edge-agent" in cmdline else None


def running_agents(root: Path | None = None) -> list[tuple[Path, int]]:
    """(state folder, pid) of every agent running on an instance under the state root."""
    root = root or default_state_root()
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []
    return [(folder, pid) for folder in folders if (pid := running_agent_pid(folder)) is not None]


def say_which_agent(state_dir: Path, out=sys.stderr) -> bool:
    """Tell the user which agent's folder this command changes; True when an agent runs on it."""
    device = state_dir / "device_id"
    who = f"device {device.read_text().strip()[:12]}" if device.is_file() else "no device yet"
    pid = running_agent_pid(state_dir)
    if pid is not None:
        print(f"edge-agent: acting on the agent running on {state_dir} ({who}, pid {pid})", file=out)
        return True
    others = [f"{folder} (pid {p})" for folder, p in running_agents() if folder.resolve() != state_dir.resolve()]
    if others:
        hint = f" Agents running on this host: {', '.join(others)}; name one with --instance or --state-dir."
    else:
        hint = (f" No agent runs under the state root ({default_state_root()}) either; a service may keep its "
                "state elsewhere (see its --state-dir).")
    print(f"edge-agent: warning: no agent is running on {state_dir} ({who}): this changes that folder only, and "
          f"an agent started on it later will use it.{hint}", file=out)
    return False
