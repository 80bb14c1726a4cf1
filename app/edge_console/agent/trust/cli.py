"""`edge-agent pair | pairings | unpair | enrol`: trust, managed on the device's own terminal.

They work on the agent's state folder (the same files the running agent reads), so they take effect on the
running agent at once, without a restart.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edge_console.agent.cli_target import say_which_agent, state_dir_of
from edge_console.agent.trust.device_trust import TrustStore
from edge_console.core.audit.log import AuditLog
from edge_console.core.terminal_text import for_terminal
from edge_console.core.trust.pairing_protocol import CODE_TTL_S, ROLES

TERMINAL = "device terminal"


def add_state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="the agent's TOML file (to find its state folder)")
    p.add_argument("--instance", help="which agent on this host (default 'default')")
    p.add_argument("--state-dir", help="the agent's state folder (default: <state root>/<instance>)")


def add_trust_commands(sub) -> None:
    pair = sub.add_parser("pair", help="open a one-time code for a console to pair with this device",
                          description="Print a one-time pairing code (8 digits, valid 10 minutes). Type it into "
                                      "the console: Pair… on the device, or `edge-console pair HOST:PORT`.",
                          epilog="example: edge-agent pair --role operator")
    pair.add_argument("--role", choices=ROLES, default="operator",
                      help="what the console may do: viewer (watch), operator (also change the model), admin "
                           "(also pair others); default operator")
    add_state_args(pair)
    listing = sub.add_parser("pairings", help="list the consoles paired with this device")
    add_state_args(listing)
    unpair = sub.add_parser("unpair", help="revoke a console's pairing (it is refused from its next request on)",
                            epilog="example: edge-agent unpair 3f2a9c01b7e4")
    unpair.add_argument("pairing_id", help="the id shown by `edge-agent pairings` (or the first 16 or more "
                                           "characters of its fingerprint)")
    add_state_args(unpair)
    enrol = sub.add_parser("enrol", help="pair a console from its certificate file, on this machine (for "
                                         "scripted set-ups; the console must pin this device's certificate too)")
    enrol.add_argument("--certificate", type=Path, required=True, help="the console's identity.crt")
    enrol.add_argument("--role", choices=ROLES, required=True)
    enrol.add_argument("--name", default="console", help="a name for the console")
    add_state_args(enrol)


def _store(args) -> TrustStore:
    state_dir = state_dir_of(args)
    say_which_agent(state_dir)
    return TrustStore(state_dir)


def run_trust_command(args) -> int:
    store = _store(args)
    audit = AuditLog(store.state_dir / "audit.log")  # the agent's own log: its lock makes us one writer at a time
    if args.command == "pair":
        code = store.issue_code(args.role)
        audit.append(TERMINAL, "pairing code issued", role=code.role, expires_at=round(code.expires_at))
        print(f"Pairing code for a {code.role} console: {code.code[:4]}-{code.code[4:]}\n"
              f"Valid for {CODE_TTL_S / 60:.0f} minutes (until {time.strftime('%H:%M', time.localtime(code.expires_at))}), "
              "once. Type it into the console: Pair… on this device, or `edge-console pair HOST:PORT`.")
    elif args.command == "pairings":
        rows = store.pairings()
        if not rows:
            print("No console is paired with this device. `edge-agent pair --role operator` opens a code.")
        for p in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.paired_at))
            # A console names itself when it pairs: its name is printed escaped (no terminal escapes, CR, bidi)
            print(for_terminal(f"{p.id}  {p.role:<8}  {when}  {p.fingerprint[:16]}  {p.console_name}"))
    elif args.command == "unpair":
        gone = store.revoke(args.pairing_id)
        if gone is None:
            print(f"edge-agent: error: no pairing {args.pairing_id!r}; `edge-agent pairings` lists them")
            return 2
        audit.append(TERMINAL, "pairing revoked", pairing=gone.id, console=gone.console_name, role=gone.role)
        print(for_terminal(f"Revoked {gone.console_name!r} ({gone.role}); it is refused from its next request on."))
    elif args.command == "enrol":
        pairing = store.enrol(args.name, args.certificate.read_bytes(), args.role)
        audit.append(TERMINAL, "paired", pairing=pairing.id, console=pairing.console_name, role=pairing.role,
                     fingerprint=pairing.fingerprint[:16], how="enrolled from a certificate file")
        print(for_terminal(f"Enrolled {pairing.console_name!r} as {pairing.role} (pairing {pairing.id})."))
    return 0
