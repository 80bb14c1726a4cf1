"""`edge-console release install-trust --devices HOST:PORT,...`: have devices trust the release authority this
console's library trusts (the admin route `PUT /v1/release-trust/root`; each device's own rules decide). What a
device refused to install until then ("no release trust is installed on this device") can then be pushed.

A device that already trusts this authority is left as it is (installing a root again would drop the metadata
versions it holds against replays). Headless (no Qt); `cli.py` parses the arguments and calls `install_trust`.

Exit status: 0 every device trusts the console's authority now; 1 some do not (each says why, on one line);
2 the console itself trusts no release authority.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import aiohttp

from edge_console.client.net.addresses import parse_host_port
from edge_console.client.net.device_access import CertificateChanged, NoLongerPaired, reach
from edge_console.client.net.session_terms import describe_error
from edge_console.client.releases.device_reports import DeviceSaidNo, ask, install_release_root
from edge_console.client.releases.eligibility import console_trust, short_keys, trusts_ours
from edge_console.client.releases.push import plain_words
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.terminal_text import for_terminal

if TYPE_CHECKING:
    from edge_console.client.releases.cli_context import Context


def _say(text: object, error: bool = False) -> None:
    print(for_terminal(text), file=sys.stderr if error else sys.stdout)


def describe_trust(trust: dict | None) -> str:
    """A device's /v1/release-trust answer in words: 'no release root', 'root v1 (keys 1a2b3c4d…, …)'."""
    if not trust or trust.get("installed") is not True:
        return "no release root"
    keys = trust.get("keys")
    version = trust.get("root_version")
    return (f"root v{version if isinstance(version, int) else '?'} (keys "
            f"{short_keys(sorted(k for k in keys if isinstance(k, str))) if isinstance(keys, list) else '?'})")


async def install_trust(ctx: Context, args) -> int:
    ours = console_trust(ctx.library.trust_dir, ctx.library.roots())
    if ours is None:
        raise EdgeConsoleError("this console trusts no release authority: `edge-console release trust "
                               "authority/metadata/1.root.json` first")
    addresses = [parse_host_port(part) for part in args.devices.split(",") if part.strip()]
    if not addresses:
        raise ValueError("--devices names no device: HOST:PORT,HOST:PORT,...")
    failed = 0
    async with aiohttp.ClientSession() as session:
        for address in addresses:
            try:
                access = await reach(session, address, ctx.contexts, ctx.pins.get)
                name = for_terminal(access.info.get("name") if isinstance(access.info.get("name"), str)
                                    else str(address))
                before = await ask(session, access.base_url, access.tls, "/v1/release-trust")
                if trusts_ours(before, ours.root_keys):
                    _say(f"{name} ({address}) already trusts this console's release authority "
                         f"({describe_trust(before)}); nothing changed")
                    continue
                if access.role != "admin":
                    raise DeviceSaidNo(f"installing release trust needs the admin role; this console is paired as "
                                       f"{access.role or 'nothing'} (pair as admin: edge-agent pair --role admin)")
                done = await install_release_root(session, access.base_url, access.tls, ours.root_json)
            except (DeviceSaidNo, ValueError, CertificateChanged, NoLongerPaired) as exc:
                failed += 1
                _say(f"edge-console: {address}: release trust not installed: {exc}", True)
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failed += 1
                _say(f"edge-console: {address}: release trust not installed: {plain_words(describe_error(exc))}", True)
                continue
            version = done.get("root_version")
            ctx.log("release trust installed on a device", device=access.device_id, root_version=version,
                    replaced=describe_trust(before))
            _say(f"{name} ({address}) now trusts release root v{version if isinstance(version, int) else '?'} "
                 f"(keys {short_keys(ours.keys)}); before: {describe_trust(before)}")
    return 1 if failed else 0
