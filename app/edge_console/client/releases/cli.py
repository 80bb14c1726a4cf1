"""The console's release, push, rollback, audit and pairing commands, headless (no Qt is loaded):

    edge-console release trust root.json                 trust a release authority (as its devices do)
    edge-console release import /media/usb/              import release files, verified as a device would
    edge-console release list | inspect ID               what the library holds, and why a release cannot go
    edge-console release remove ID [ID...]               delete releases from the library (refused, or junk)
    edge-console release install-trust --devices H:P,...  have devices trust this console's release authority (admin)
    edge-console release-key [--out FILE]                this console's delivery key (for edge-bundle --console-key)
    edge-console pair HOST:PORT [--code CODE]            pair with a device using the code it shows
    edge-console pairings HOST:PORT [--revoke ID] [--json]   the consoles paired with a device; revoke one (admin)
    edge-console push --release ID --devices H:P,H:P [--canary N] [--batch N] [--max-failure-pct P] [--json]
    edge-console rollback --device HOST:PORT [--version V]
    edge-console audit export [--devices H:P,...] [--format json|csv] [--out FILE]

Exit status: 0 done; 1 done but something failed (a release not verified, a rollout halted); 2 bad arguments, or
a command that could not be done (why, on one line: never a traceback). What a device said (names, details, errors)
is printed escaped: terminal escape sequences, carriage returns and bidi marks show as \x1b, \r, \u202e.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
from pathlib import Path

import aiohttp

from edge_console.client.net.addresses import parse_host_port
from edge_console.client.net.device_access import CertificateChanged, NoLongerPaired, reach, ssl_arg
from edge_console.client.net.device_answers import read_json
from edge_console.client.net.pairing_client import pair
from edge_console.client.net.session_terms import describe_error
from edge_console.client.releases.audit_merge import (
    AuditHeads,
    MergedAudit,
    check,
    fetch_device_log,
    fetch_signed_head,
)
from edge_console.client.releases.cli_context import Context
from edge_console.client.releases.delivery import delivery_public_key
from edge_console.client.releases.device_reports import read_reports
from edge_console.client.releases.eligibility import console_trust
from edge_console.client.releases.library_cli import recheck_refused, remove_releases
from edge_console.client.releases.push import PushFailed, plain_words
from edge_console.client.releases.rollout import DeviceFacts, DeviceStep, Rollout, RolloutStore, ineligible
from edge_console.client.releases.rollout_runner import DeliverySource, RolloutRunner, new_rollout
from edge_console.client.releases.trust_cli import install_trust
from edge_console.client.trust_store import default_data_dir
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.protocol import ProtocolError
from edge_console.core.terminal_text import for_terminal
from edge_console.core.trust.pairing_protocol import PairingFailed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-console", description="Releases, pushes and audit, headless",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="the console's data folder (default: the "
                                                                    "user's data directory)")
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser("release", help="the release library").add_subparsers(dest="action", required=True)
    release.add_parser("trust").add_argument("root", type=Path)
    importing = release.add_parser("import", help="verify a release file as a device would and add it to the library")
    importing.add_argument("path", type=Path)
    importing.add_argument("--json", action="store_true", help="print the library's entry as JSON")
    listing = release.add_parser("list")
    listing.add_argument("--json", action="store_true")
    release.add_parser("inspect").add_argument("release")
    remove = release.add_parser("remove", help="delete releases from the library (not one a rollout still needs)")
    remove.add_argument("release", nargs="+", help="a release's id (or line:version) from `edge-console release list`")
    installing = release.add_parser("install-trust", help="have devices trust the release authority this console "
                                                          "trusts (needs the admin role on each)")
    installing.add_argument("--devices", required=True, help="HOST:PORT,HOST:PORT,...")
    key = sub.add_parser("release-key", help="this console's delivery public key")
    key.add_argument("--out", type=Path)
    pairing = sub.add_parser("pair", help="pair with a device using the one-time code it shows")
    pairing.add_argument("device", metavar="HOST:PORT")
    pairing.add_argument("--code", help="the 8-digit code (asked when not given)")
    pairing.add_argument("--name", default=socket.gethostname(), help="how the device lists this console")
    pairings = sub.add_parser("pairings", help="list the consoles paired with a device, or revoke one (admin)")
    pairings.add_argument("device", metavar="HOST:PORT")
    pairings.add_argument("--revoke", metavar="ID", help="the pairing to revoke (an id from the listing)")
    pairings.add_argument("--json", action="store_true")
    push = sub.add_parser("push", help="push a release to devices: canaries first, then batches")
    push.add_argument("--release", required=True, help="a release in the library (id, line:version) or a file")
    push.add_argument("--devices", required=True, help="HOST:PORT,HOST:PORT,...")
    push.add_argument("--canary", type=int, default=1, help="how many devices go first (default 1)")
    push.add_argument("--batch", type=int, default=1, help="devices at a time after the canaries (default 1)")
    push.add_argument("--max-failure-pct", type=float, help="halt above this share of failures (default: any)")
    push.add_argument("--json", action="store_true")
    roll = sub.add_parser("rollback", help="roll a device back to its previous (or a retained) model")
    roll.add_argument("--device", required=True, metavar="HOST:PORT")
    roll.add_argument("--version")
    roll.add_argument("--json", action="store_true", help="print what the device runs now as JSON")
    audit = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    export = audit.add_parser("export", help="the console's and its devices' audit logs, merged and verified")
    export.add_argument("--devices", default="", help="HOST:PORT,... whose logs to merge")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", type=Path)
    return parser


def _addresses(text: str):
    return [parse_host_port(part) for part in text.split(",") if part.strip()]


def say_line(text: object, file=None) -> None:
    """One line that may quote a device (or a console, or the network): escaped for the terminal."""
    print(for_terminal(text), file=file or sys.stdout)


def _object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


async def _facts(session, ctx: Context, address, reports: bool = False) -> tuple[DeviceFacts, str, object]:
    """What the device says of itself (/v1/info); with `reports`, also its /v1/models and /v1/release-trust, which
    the eligibility rules judge by."""
    access = await reach(session, address, ctx.contexts, ctx.pins.get)
    info = access.info  # the device's word: every field is checked for its type before it is used
    hardware, model = _object(info.get("hardware")), _object(info.get("model"))
    providers = hardware.get("providers_available")
    facts = DeviceFacts(access.device_id, _text(info.get("name")) or str(address), access.base_url,
                        _text(hardware.get("arch")), _text(info.get("agent_version")),
                        [p for p in providers if isinstance(p, str)] if isinstance(providers, list) else [],
                        access.role, f"{_text(model.get('name'))} {_text(model.get('version'))}".strip())
    if reports:
        said = await read_reports(session, access.base_url, access.tls)
        facts.models, facts.models_problem, facts.trust, facts.trust_problem = (
            said.models, said.models_problem, said.trust, said.trust_problem)
    return facts, access.base_url, access.tls


REACH_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, CertificateChanged, NoLongerPaired)


def _unreachable(exc: BaseException) -> str:
    """Why a device could not be reached, in words (aiohttp's own text quotes the TLS context it was given)."""
    return plain_words(describe_error(exc) if isinstance(exc, aiohttp.ClientError | TimeoutError) else str(exc))


async def _push(ctx: Context, args) -> int:
    entry = ctx.library.get(args.release)
    if entry is None and Path(args.release).is_file():
        entry = ctx.library.import_release(Path(args.release))
    if entry is None:
        raise EdgeConsoleError(f"no release {args.release!r} in the library; `edge-console release list`")
    if not entry.verified:
        raise EdgeConsoleError(f"{entry.label} cannot be pushed: {entry.problem}")
    def say(line: str) -> None:
        say_line(line, sys.stderr if args.json else sys.stdout)

    ours = console_trust(ctx.library.trust_dir, ctx.library.roots())
    async with aiohttp.ClientSession() as session:
        reached = {}
        steps = []
        for address in _addresses(args.devices):
            try:
                facts, base, tls = await _facts(session, ctx, address, reports=True)
            except REACH_ERRORS as exc:  # the same rule as the console's window: an offline device is skipped
                trust = isinstance(exc, CertificateChanged | NoLongerPaired)
                why = plain_words(str(exc)) if trust else f"offline: {address}: {_unreachable(exc)}"
                steps.append(DeviceStep(str(address), str(address), phase="skipped", detail=why))
                say(f"{address}: skipped: {why}")
                continue
            reached[facts.device_id] = (base, tls)
            why = ineligible(entry, facts, ours.root_keys if ours else None, rollback_words="edge-console rollback")
            steps.append(DeviceStep(facts.device_id, facts.name, phase="skipped" if why else "waiting",
                                    detail=why or ""))
            say(f"{facts.name} ({address}): {'skipped: ' + why if why else 'runs ' + facts.running}")
        for step in [s for s in steps if s.phase == "waiting"][: args.canary]:
            step.canary = True
        rollout = new_rollout(entry, steps, args.batch, args.max_failure_pct)
        store = RolloutStore(ctx.database)  # saved once its delivery is made: from then on, resumable

        def resolve(device_id: str):
            if device_id not in reached:
                raise PushFailed("the device was not reached when the push began")
            return reached[device_id]

        # The same orchestration as the window's (rollout_runner.py): the delivery is kept for a resume.
        runner = RolloutRunner(rollout, session, resolve, store.save, changed=_progress_printer(say), audit=ctx.log)
        ctx.log("push requested", release=entry.label, devices=[s.device_id for s in steps])
        try:
            result = await runner.run(DeliverySource(lambda: ctx.library, entry, ctx.data_dir))
        finally:
            store.close()
    for step in result.steps:
        say(f"  {step.name}: {step.phase}" + (f": {step.detail}" if step.detail and step.detail != step.phase else ""))
    sent = [s for s in result.steps if s.phase != "skipped"]
    say(f"rollout {result.status}" + (f": {result.reason}" if result.reason else "")
        + ("" if sent else ": nothing was sent, every device was skipped"))
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    return 0 if result.status == "done" and sent else 1


def _progress_printer(say):
    """A line each time a device's push reaches another step (upload started, verified, checked, on probation...),
    not one per uploaded chunk: a push in a terminal is followed, and a minute of probation is not silence."""
    seen: dict[str, tuple[str, str]] = {}

    def changed(rollout: Rollout) -> None:
        for step in rollout.steps:
            state = str(step.record.get("state") or ("uploading" if step.phase == "pushing" else step.phase))
            if step.phase in ("waiting", "skipped") or seen.get(step.device_id, ("", ""))[1] == state:
                continue
            seen[step.device_id] = (step.phase, state)
            note = (step.record.get("steps") or [{}])[-1].get("note", "") if step.record else ""
            say(f"  {step.name}: {state}" + (f" ({note})" if note and note != state else ""))

    return changed


async def _rollback(ctx: Context, args) -> int:
    from edge_console.client.releases.push import rollback

    async with aiohttp.ClientSession() as session:
        facts, base, tls = await _facts(session, ctx, parse_host_port(args.device))
        body = await rollback(session, base, tls, args.version)
    running = body.get("running")
    ctx.log("rollback", device=facts.device_id, to=running)
    if running is None:
        raise EdgeConsoleError(f"{facts.name} says it rolled back, but not to what; `edge-console audit export` "
                               "shows what it recorded")
    if args.json:
        print(json.dumps(running, indent=1))  # JSON with ensure_ascii: every control or bidi character is escaped
    else:
        line, version = running.get("line", "?"), running.get("version", "?")
        say_line(f"{facts.name} rolled back: it runs {line} {version}" + (" (factory)" if running.get("factory")
                                                                           else ""))
    return 0


async def _audit(ctx: Context, args) -> int:
    heads = AuditHeads(ctx.database)
    merged = MergedAudit([check("console", "console", ctx.audit.entries(), None)])
    unread = []  # devices whose log is missing from the export: the export is incomplete
    async with aiohttp.ClientSession() as session:
        for address in _addresses(args.devices):
            try:
                facts, base, tls = await _facts(session, ctx, address)
                signed = await fetch_signed_head(session, base, tls)  # before the entries: they hold its head
                pin = ctx.pins.get(facts.device_id)
                merged.logs.append(check(facts.name, facts.device_id, await fetch_device_log(session, base, tls),
                                         heads, signed, pin.certificate if pin else None))
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, CertificateChanged, NoLongerPaired) as exc:
                say_line(f"edge-console: {address}: cannot read its audit log: {exc}", sys.stderr)
                unread.append(address)
    text = merged.to_csv() if args.format == "csv" else merged.to_json()
    if args.out:
        args.out.write_text(text)
    else:
        # CSV quotes the devices' words but keeps their control characters: escaped on the terminal, not in a file
        print(for_terminal(text.replace("\r\n", "\n"), keep_newlines=True))
    for log in merged.broken:
        say_line(f"edge-console: BROKEN AUDIT CHAIN in {log.source}: {log.report.problem}", sys.stderr)
    return 1 if merged.broken or unread else 0


async def _pair(ctx: Context, args) -> int:
    address = parse_host_port(args.device)
    code = args.code or (getpass.getpass(f"Pairing code shown by {address}: ") if sys.stdin.isatty() else "")
    if not code:
        raise EdgeConsoleError("give the code with --code (the device prints it: edge-agent pair --role operator)")
    result = await pair(address, code, ctx.identity, args.name)
    ctx.pins.pin(result.device_id, result.certificate_pem, result.role, str(address))
    ctx.log("paired", device=result.device_id, role=result.role, fingerprint=result.fingerprint[:16])
    say_line(f"Paired with {address} as {result.role} (device {result.device_id}, certificate "
             f"{result.fingerprint[:16]}).")
    return 0


async def _pairings(ctx: Context, args) -> int:
    address = parse_host_port(args.device)
    async with aiohttp.ClientSession() as session:
        facts, base, tls = await _facts(session, ctx, address)
        if facts.role != "admin":
            raise EdgeConsoleError(f"{address}: listing and revoking pairings needs the admin role; this console "
                                   f"is paired as {facts.role or 'nothing'}")
        if args.revoke:
            async with session.delete(f"{base}/v1/pairings/{args.revoke}", ssl=ssl_arg(tls)) as r:
                if r.status == 404:
                    raise EdgeConsoleError(f"{address} has no pairing {args.revoke!r}; list them first")
                r.raise_for_status()
            ctx.log("pairing revoked", device=facts.device_id, pairing=args.revoke)
            say_line(f"Revoked pairing {args.revoke} on {facts.name} ({address}).")
            return 0
        async with session.get(f"{base}/v1/pairings", ssl=ssl_arg(tls)) as r:
            r.raise_for_status()
            listing = pairing_rows(await read_json(r, expect=dict))
    if args.json:
        print(json.dumps(listing))  # ensure_ascii: every control or bidi character arrives escaped
    for p in [] if args.json else listing:
        say_line(f"{p['id']}  {p['role']:<8} {p['fingerprint'][:16]}  {p['console_name']}"
                 + ("  (this console)" if p.get("this_console") else ""))
    return 0


def pairing_rows(body: dict) -> list[dict]:
    """`GET /v1/pairings` as rows of text: ProtocolError when it is not a list of pairings."""
    rows = body.get("pairings")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ProtocolError("the device's list of pairings is not a list of pairings")
    return [{"id": _text(row.get("id")), "role": _text(row.get("role")), "fingerprint": _text(row.get("fingerprint")),
             "console_name": _text(row.get("console_name")), "this_console": row.get("this_console") is True}
            for row in rows]


def run(args) -> int:
    ctx = Context(args.data_dir or default_data_dir())
    if args.command == "release":
        if args.action == "trust":
            root = ctx.library.trust(args.root.read_bytes())
            ctx.log("release trust installed", root_version=root.signed.version)
            print(f"The console trusts releases under root version {root.signed.version}.")
            recheck_refused(ctx)
            return 0
        if args.action == "remove":
            return remove_releases(ctx, args.release)
        if args.action == "install-trust":
            return asyncio.run(install_trust(ctx, args))
        if args.action == "import":
            entry = ctx.library.import_release(args.path)
            ctx.log("release imported", release=entry.label, verified=entry.verified, problem=entry.problem)
            if args.json:
                print(json.dumps(entry.to_dict(), indent=1, default=str))
            else:
                say_line(f"{entry.label} (id {entry.id}): verified, ready to push" if entry.verified else
                         f"{entry.label or args.path.name} (id {entry.id}): REFUSED: {entry.problem}")
            return 0 if entry.verified else 1
        if args.action == "list":
            entries = ctx.library.entries()
            if args.json:
                print(json.dumps([e.to_dict() for e in entries], default=str))
            for e in [] if args.json else entries:
                say_line(f"{e.id:<40} {'verified' if e.verified else 'REFUSED: ' + e.problem}")
            return 0
        entry = ctx.library.get(args.release)
        if entry is None:
            raise EdgeConsoleError(f"no release {args.release!r}; `edge-console release list`")
        print(json.dumps(entry.to_dict(), indent=1, default=str))
        return 0
    if args.command == "release-key":
        data = delivery_public_key(ctx.data_dir)
        (args.out.write_bytes(data) if args.out else sys.stdout.write(data.decode() + "\n"))
        return 0
    handler = {"push": _push, "rollback": _rollback, "audit": _audit, "pair": _pair,
               "pairings": _pairings}[args.command]
    return asyncio.run(handler(ctx, args))


COMMANDS = ("release", "release-key", "pair", "pairings", "push", "rollback", "audit")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ProtocolError, PairingFailed) as exc:  # what a device sent (both are ValueErrors, not bad arguments)
        say_line(f"edge-console: error: {exc}", sys.stderr)
        return 2
    except ValueError as exc:
        parser.error(for_terminal(exc))
    except aiohttp.ClientConnectorError as exc:  # its own text shows Python objects: the engineer's words instead
        say_line(f"edge-console: error: {exc.host}:{exc.port}: {describe_error(exc)}", sys.stderr)
        return 2
    except (aiohttp.ClientError, TimeoutError) as exc:
        say_line(f"edge-console: error: {describe_error(exc)}", sys.stderr)
        return 2
    except (EdgeConsoleError, CertificateChanged, NoLongerPaired, OSError) as exc:
        say_line(f"edge-console: error: {exc or type(exc).__name__}", sys.stderr)
        return 2
    except Exception as exc:  # a failure nobody expected: one line, never a traceback
        say_line(f"edge-console: error: unexpected failure ({type(exc).__name__}: {exc})", sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())

