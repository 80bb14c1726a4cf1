"""The console's release, push, rollback, audit and pairing commands, headless (no Qt is loaded):

    edge-console release trust root.json                 trust a release authority (as its devices do)
    edge-console release import /media/usb/              import release files, verified as a device would
    edge-console release list | inspect ID               what the library holds, and why a release cannot go
    edge-console release-key [--out FILE]                this console's delivery key (for edge-bundle --console-key)
    edge-console pair HOST:PORT [--code CODE]            pair with a device using the code it shows
    edge-console pairings HOST:PORT [--revoke ID] [--json]   the consoles paired with a device; revoke one (admin)
    edge-console push --release ID --devices H:P,H:P [--canary N] [--batch N] [--max-failure-pct P] [--json]
    edge-console rollback --device HOST:PORT [--version V]
    edge-console audit export [--devices H:P,...] [--format json|csv] [--out FILE]

Exit status: 0 done; 1 done but something failed (a release not verified, a rollout halted); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
import uuid
from pathlib import Path

import aiohttp

from edge_console.core.errors import EdgeConsoleError
from edge_console.core.pairing_protocol import PairingFailed

from ..net.addresses import parse_host_port
from ..net.device_access import CertificateChanged, NoLongerPaired, reach
from ..net.pairing_client import pair
from ..trust_store import PinStore, TlsContexts, console_identity, default_data_dir
from .audit_merge import AuditHeads, MergedAudit, check, console_audit, fetch_device_log
from .delivery import delivery_public_key, make_delivery
from .library import ReleaseLibrary
from .rollout import DeviceFacts, DeviceStep, Rollout, RolloutRunner, RolloutStore, ineligible


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-console", description="Releases, pushes and audit, headless",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="the console's data folder (default: the "
                                                                    "user's data directory)")
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser("release", help="the release library").add_subparsers(dest="action", required=True)
    release.add_parser("trust").add_argument("root", type=Path)
    release.add_parser("import").add_argument("path", type=Path)
    listing = release.add_parser("list")
    listing.add_argument("--json", action="store_true")
    release.add_parser("inspect").add_argument("release")
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
    audit = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    export = audit.add_parser("export", help="the console's and its devices' audit logs, merged and verified")
    export.add_argument("--devices", default="", help="HOST:PORT,... whose logs to merge")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", type=Path)
    return parser


class Context:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.database = data_dir / "console.sqlite"
        self.library = ReleaseLibrary(data_dir)
        self.pins = PinStore(self.database)
        self.identity = console_identity(data_dir)
        self.contexts = TlsContexts(self.identity)
        self.audit = console_audit(data_dir)

    def log(self, event: str, **details) -> None:
        self.audit.append(f"console {socket.gethostname()} ({getpass.getuser()})", event, **details)


def _addresses(text: str):
    return [parse_host_port(part) for part in text.split(",") if part.strip()]


async def _facts(session, ctx: Context, address) -> tuple[DeviceFacts, str, object]:
    access = await reach(session, address, ctx.contexts, ctx.pins.get)
    info = access.info
    hardware = info.get("hardware") or {}
    model = info.get("model") or {}
    facts = DeviceFacts(access.device_id, str(info.get("name", address)), access.base_url,
                        str(hardware.get("arch", "")), str(info.get("agent_version", "")),
                        list(hardware.get("providers_available") or []), access.role,
                        f"{model.get('name', '')} {model.get('version', '')}".strip())
    return facts, access.base_url, access.tls


async def _push(ctx: Context, args) -> int:
    entry = ctx.library.get(args.release)
    if entry is None and Path(args.release).is_file():
        entry = ctx.library.import_release(Path(args.release))
    if entry is None:
        raise EdgeConsoleError(f"no release {args.release!r} in the library; `edge-console release list`")
    if not entry.verified:
        raise EdgeConsoleError(f"{entry.label} cannot be pushed: {entry.problem}")
    say = (lambda s: print(s, file=sys.stderr)) if args.json else print
    async with aiohttp.ClientSession() as session:
        reached = {}
        steps = []
        for address in _addresses(args.devices):
            facts, base, tls = await _facts(session, ctx, address)
            reached[facts.device_id] = (base, tls)
            why = ineligible(entry.summary, facts)
            steps.append(DeviceStep(facts.device_id, facts.name, phase="skipped" if why else "waiting",
                                    detail=why or ""))
            say(f"{facts.name} ({address}): {'skipped: ' + why if why else 'runs ' + facts.running}")
        for step in [s for s in steps if s.phase == "waiting"][: args.canary]:
            step.canary = True
        rollout = Rollout(uuid.uuid4().hex[:12], entry.id, entry.label, steps, batch=max(1, args.batch),
                          max_failure_pct=args.max_failure_pct)
        store = RolloutStore(ctx.database)
        delivery = make_delivery(ctx.library, entry, ctx.data_dir, ctx.library.folder)
        runner = RolloutRunner(rollout, delivery, session, lambda device_id: reached[device_id], store.save,
                               changed=lambda r: None, audit=ctx.log)
        ctx.log("push requested", release=entry.label, devices=[s.device_id for s in steps])
        result = await runner.run()
    for step in result.steps:
        say(f"  {step.name}: {step.phase} {step.detail}")
    say(f"rollout {result.status}" + (f": {result.reason}" if result.reason else ""))
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    return 0 if result.status == "done" else 1


async def _rollback(ctx: Context, args) -> int:
    from .push import rollback

    async with aiohttp.ClientSession() as session:
        facts, base, tls = await _facts(session, ctx, parse_host_port(args.device))
        body = await rollback(session, base, tls, args.version)
    ctx.log("rollback", device=facts.device_id, to=body.get("running"))
    print(json.dumps(body["running"], indent=1))
    return 0


async def _audit(ctx: Context, args) -> int:
    heads = AuditHeads(ctx.database)
    merged = MergedAudit([check("console", "console", ctx.audit.entries(), None)])
    async with aiohttp.ClientSession() as session:
        for address in _addresses(args.devices):
            try:
                facts, base, tls = await _facts(session, ctx, address)
                merged.logs.append(check(facts.name, facts.device_id, await fetch_device_log(session, base, tls),
                                         heads))
            except (aiohttp.ClientError, OSError, CertificateChanged, NoLongerPaired) as exc:
                print(f"edge-console: {address}: cannot read its audit log: {exc}", file=sys.stderr)
    text = merged.to_csv() if args.format == "csv" else merged.to_json()
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    for log in merged.broken:
        print(f"edge-console: BROKEN AUDIT CHAIN in {log.source}: {log.report.problem}", file=sys.stderr)
    return 1 if merged.broken else 0


async def _pair(ctx: Context, args) -> int:
    address = parse_host_port(args.device)
    code = args.code or (getpass.getpass(f"Pairing code shown by {address}: ") if sys.stdin.isatty() else "")
    if not code:
        raise EdgeConsoleError("give the code with --code (the device prints it: edge-agent pair --role operator)")
    result = await pair(address, code, ctx.identity, args.name)
    ctx.pins.pin(result.device_id, result.certificate_pem, result.role, str(address))
    ctx.log("paired", device=result.device_id, role=result.role, fingerprint=result.fingerprint[:16])
    print(f"Paired with {address} as {result.role} (device {result.device_id}, certificate "
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
            async with session.delete(f"{base}/v1/pairings/{args.revoke}", ssl=tls) as r:
                if r.status == 404:
                    raise EdgeConsoleError(f"{address} has no pairing {args.revoke!r}; list them first")
                r.raise_for_status()
            ctx.log("pairing revoked", device=facts.device_id, pairing=args.revoke)
            print(f"Revoked pairing {args.revoke} on {facts.name} ({address}).")
            return 0
        async with session.get(f"{base}/v1/pairings", ssl=tls) as r:
            r.raise_for_status()
            listing = (await r.json())["pairings"]
    if args.json:
        print(json.dumps(listing))
    for p in [] if args.json else listing:
        print(f"{p['id']}  {p['role']:<8} {p['fingerprint'][:16]}  {p['console_name']}"
              + ("  (this console)" if p.get("this_console") else ""))
    return 0


def run(args) -> int:
    ctx = Context(args.data_dir or default_data_dir())
    if args.command == "release":
        if args.action == "trust":
            root = ctx.library.trust(args.root.read_bytes())
            ctx.log("release trust installed", root_version=root.signed.version)
            print(f"The console trusts releases under root version {root.signed.version}.")
            return 0
        if args.action == "import":
            entry = ctx.library.import_release(args.path)
            ctx.log("release imported", release=entry.label, verified=entry.verified, problem=entry.problem)
            print(json.dumps(entry.to_dict(), indent=1, default=str))
            return 0 if entry.verified else 1
        if args.action == "list":
            entries = ctx.library.entries()
            if args.json:
                print(json.dumps([e.to_dict() for e in entries], default=str))
            for e in [] if args.json else entries:
                print(f"{e.id:<40} {'verified' if e.verified else 'REFUSED: ' + e.problem}")
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
    except ValueError as exc:
        parser.error(str(exc))
    except (EdgeConsoleError, PairingFailed, CertificateChanged, NoLongerPaired, OSError,
            aiohttp.ClientError) as exc:
        print(f"edge-console: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())

