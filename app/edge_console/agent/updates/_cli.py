"""`edge-agent install | versions | rollback | trust-root | audit`: updates from the device's own terminal.

They hand work to the running agent through its state folder (a release copied into <state>/inbox, a rollback
request beside it) and follow it there, so the agent stays the one writer of its model store.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from edge_console.agent.cli_target import say_which_agent, state_dir_of
from edge_console.agent.trust.cli import add_state_args
from edge_console.agent.updates._model_store import ModelStore
from edge_console.agent.updates._records import UpdateRecords
from edge_console.agent.updates._versions_summary import versions_summary
from edge_console.core.atomic_files import write_atomic
from edge_console.core.audit.log import AuditLog
from edge_console.core.protocol import UPDATE_FINAL, UPDATE_ON_PROBATION, UPDATE_SUCCEEDED
from edge_console.core.releases.trust import install_root
from edge_console.core.terminal_text import for_terminal

WAIT_S = 600.0


def add_update_commands(sub) -> None:
    install = sub.add_parser("install", help="install a release file (e.g. from a USB stick) on this device",
                             epilog="example: edge-agent install /media/usb/parts-2.0.0.edgerelease")
    install.add_argument("path", type=Path, help="a .edgerelease file, or a folder holding them (the newest goes)")
    install.add_argument("--no-wait", action="store_true", help="hand it over and return at once")
    add_state_args(install)
    versions = sub.add_parser("versions", help="the running model, the previous one, the retained versions")
    versions.add_argument("--json", action="store_true", help="print the model store's state as JSON")
    add_state_args(versions)
    rollback = sub.add_parser("rollback", help="go back to the previous model, or to a retained version",
                              epilog="example: edge-agent rollback 1.0.0")
    rollback.add_argument("version", nargs="?", help="a retained version (default: the previous model)")
    add_state_args(rollback)
    trust = sub.add_parser("trust-root", help="trust the release authority's root.json (once, at installation)")
    trust.add_argument("root", type=Path)
    add_state_args(trust)
    audit = sub.add_parser("audit", help="check or export the device's audit log")
    audit.add_argument("action", choices=("verify", "export"))
    audit.add_argument("--out", type=Path, help="export to this file (JSON lines); default standard output")
    add_state_args(audit)


def _state_dir(args) -> tuple[Path, bool]:
    """The agent's state folder, and whether an agent runs on it (said to the user either way)."""
    state = state_dir_of(args)
    return state, say_which_agent(state)


def _release_file(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.glob("*.edgerelease"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise OSError(f"no .edgerelease file in {path}")
        return found[-1]
    if not path.is_file():
        raise OSError(f"{path} not found")
    return path


def _follow(state: Path, release_name: str, since: float) -> int:
    records = UpdateRecords(state / "updates", lambda _event: None)
    deadline, shown = time.time() + WAIT_S, 0
    while time.time() < deadline:
        mine = [r for r in records.all() if r.release == release_name and r.created_at >= since - 1]
        if mine:
            record = mine[-1]
            for step in record.steps[shown:]:
                print(f"  {step['state']:<12} {for_terminal(str(step['note']))}")  # notes may quote a release
            shown = len(record.steps)
            if record.state in (*UPDATE_FINAL, UPDATE_ON_PROBATION):  # the switch is as far as a person waits
                return 0 if record.state in (UPDATE_SUCCEEDED, UPDATE_ON_PROBATION) else 1
        time.sleep(0.5)
    print("edge-agent: the agent has not taken the release yet; is it running? It installs it when it starts.")
    return 3


def run_update_command(args) -> int:
    state, running = _state_dir(args)
    if args.command == "install":
        release = _release_file(args.path)
        inbox = state / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        partial = inbox / f".{release.name}.partial"
        shutil.copyfile(release, partial)  # copied under a hidden name, renamed when complete
        since = time.time()
        partial.replace(inbox / release.name)
        if not running:
            print(f"Left {release.name} in {inbox}: the agent installs it when it starts.")
            return 0
        print(f"Handed {release.name} to the agent.")
        return 0 if args.no_wait else _follow(state, release.name, since)
    if args.command == "versions":
        try:
            lifecycle = ModelStore(state).load()
        except (ValueError, TypeError, KeyError) as exc:
            raise OSError(f"{state / 'models' / 'lifecycle.json'} is not a model store's state file: {exc}") from None
        if args.json:
            print(json.dumps(lifecycle.to_dict(), indent=1))
        else:
            records = UpdateRecords(state / "updates", lambda _event: None).all() if (state / "updates").is_dir() \
                else []
            print(versions_summary(lifecycle, max(records, key=lambda r: r.created_at, default=None)))
    elif args.command == "rollback":
        inbox = state / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: the running agent polls the inbox and must never read half a request.
        write_atomic(inbox / f"rollback-{time.time():.3f}.json", json.dumps({"version": args.version}).encode())
        print("Rollback requested; `edge-agent versions` shows the result in a second." if running else
              "Rollback requested: the agent does it when it starts.")
    elif args.command == "trust-root":
        root = install_root(state / "release-trust", args.root.read_bytes())
        AuditLog(state / "audit.log").append("device terminal", "release trust installed",
                                             root_version=root.signed.version)
        print(f"This device now trusts releases signed under root version {root.signed.version}.")
    elif args.command == "audit":
        log = AuditLog(state / "audit.log")
        if args.action == "verify":
            report = log.verify()
            print(json.dumps(report.to_dict(), indent=1))
            return 0 if report.ok else 1
        out = open(args.out, "w") if args.out else sys.stdout  # noqa: SIM115
        for entry in log.entries():
            out.write(json.dumps(entry) + "\n")
        if args.out:
            out.close()
    return 0
