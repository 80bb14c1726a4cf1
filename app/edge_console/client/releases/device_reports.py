"""What a device says about its models and its release trust, asked outside its session: `GET /v1/models` and
`GET /v1/release-trust` (viewer), the answers the eligibility rules judge by; and installing this console's release
root on it (`PUT /v1/release-trust/root`, admin; the device's own rules decide: agent/api/update_routes.py). Qt-free.

Every answer is untrusted: read as bounded JSON objects; a failure is said in words (never aiohttp's own text).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiohttp

from edge_console.client.net.device_access import ssl_arg
from edge_console.client.net.device_answers import UnreadableAnswer, read_error_detail, read_json
from edge_console.client.releases.push import link_problem
from edge_console.client.untrusted_text import visible_text

ASK_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
MAX_ANSWER_BYTES = 512 * 1024


@dataclass
class DeviceReports:
    """A device's /v1/models and /v1/release-trust answers; None with the reason when one could not be read."""

    models: dict | None = None
    models_problem: str = ""
    trust: dict | None = None
    trust_problem: str = ""


class DeviceSaidNo(Exception):
    """The device answered with an error: the text says which, in words."""


async def ask(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, path: str,
              method: str = "GET", data: bytes | None = None) -> dict:
    """A JSON object from the device; DeviceSaidNo (its refusal), or ValueError / a link error otherwise."""
    async with session.request(method, base + path, ssl=ssl_arg(tls), data=data, timeout=ASK_TIMEOUT,
                               headers={"Content-Type": "application/json"} if data is not None else None) as r:
        if r.status != 200:
            raise DeviceSaidNo(f"HTTP {r.status}: {visible_text(await read_error_detail(r), 200)}")
        return await read_json(r, expect=dict, limit=MAX_ANSWER_BYTES)


async def _one(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None,
               path: str) -> tuple[dict | None, str]:
    try:
        return await ask(session, base, tls, path), ""
    except (DeviceSaidNo, UnreadableAnswer) as exc:
        return None, f"{path}: {exc}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return None, link_problem(exc, base)


async def read_reports(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None) -> DeviceReports:
    (models, models_problem), (trust, trust_problem) = await asyncio.gather(
        _one(session, base, tls, "/v1/models"), _one(session, base, tls, "/v1/release-trust"))
    return DeviceReports(models, models_problem, trust, trust_problem)


async def install_release_root(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None,
                               root_json: bytes) -> dict:
    """Have the device trust `root_json` (the admin route); its answer: {root_version, keys}. DeviceSaidNo with
    the device's reason when it refuses (not an admin pairing, not a root it accepts)."""
    return await ask(session, base, tls, "/v1/release-trust/root", method="PUT", data=root_json)
