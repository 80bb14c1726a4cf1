"""What must hold on a device after any fault, and small helpers the faults share."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from .delivery import get_json, wait_for
from .devices import Device, sha256_file
from .site import FieldSite

UNFINISHED = ("staged", "verified", "checked")


def general(site: FieldSite) -> list[Device]:
    return [d for d in site.devices if d.index in site.roles["general"]]


# -- what must hold on a device after any fault -----------------------------------------------------------------
def stuck_records(site: FieldSite, device: Device) -> list[dict]:
    """Records left in a middle state while the device says it is not busy with any update."""
    unfinished = [r for r in device.records() if r["state"] in UNFINISHED]
    if not unfinished:
        return []
    try:
        status, models = site.console.loop.call(get_json(device.base_url, site.console.tls_for(device.id),
                                                         "/v1/models"), timeout=15)
    except Exception:  # noqa: BLE001 - not answering: not known to be stuck
        return []
    return unfinished if status == 200 and models.get("busy") is False else []


def quiescent(site: FieldSite, device: Device, timeout: float = 60.0) -> bool:
    """No update in a middle state (False at once for one the device has given up on: a stuck record)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(r["state"] in UNFINISHED for r in device.records()):
            return True
        if stuck_records(site, device):
            time.sleep(1.0)
            if stuck_records(site, device):
                return False
        time.sleep(0.1)
    return False


def check_device(site: FieldSite, device: Device, timeout: float = 30.0) -> tuple[bool, str, bool]:
    """(ok, why not, model lost): the agent answers, runs a model whose file is one it verified (or the factory
    model), the one its lifecycle says; nothing half-copied in the store; every update record finished; the audit
    chain verifies. `lost`: it runs no verified model, or its lifecycle points at a missing or damaged file."""
    if not device.running:
        return False, f"{device.name}: the agent is not running", True
    if not quiescent(site, device, timeout):
        return False, f"{device.name}: an update never finished: {[r['state'] for r in device.records()]}", False
    tls = site.console.tls_for(device.id)
    info = None
    deadline = time.monotonic() + timeout
    while info is None and time.monotonic() < deadline:
        try:
            status, body = site.console.loop.call(get_json(device.base_url, tls, "/v1/info"), timeout=15)
            info = body if status == 200 else None
        except Exception:  # noqa: BLE001 - the agent may still be starting
            time.sleep(0.3)
    if info is None:
        return False, f"{device.name}: /v1/info does not answer", True
    problems, lost = [], False
    running = info["model"]["sha256"]
    verified = device.verified_models()
    if running not in verified:
        problems.append(f"runs model {running[:12]} which it never verified")
        lost = True
    if running != device.expected_model_sha():
        problems.append("runs something other than what its lifecycle.json says")
    lc = device.lifecycle()
    for role in ("active", "previous"):
        model = lc.get(role)
        if model and not model.get("factory") and (not Path(model["path"]).is_file()
                                                    or sha256_file(Path(model["path"])) != model["sha256"]):
            problems.append(f"its {role} model {model['version']} is missing or damaged")
            lost = True
    if list((device.state / "models" / "store").glob("*/.*.partial")):
        problems.append("a half-copied model is left in the store")
    bad = [r["state"] for r in device.records() if r["state"] not in ("good", "rejected", "interrupted",
                                                                         "rolled_back", "active")]
    if bad:
        problems.append(f"update records left in {bad}")
    status, report = site.console.loop.call(get_json(device.base_url, tls, "/v1/audit/verify"), timeout=15)
    if not report.get("ok"):
        problems.append(f"audit chain broken: {report.get('problem')}")
    return not problems, f"{device.name}: " + "; ".join(problems), lost


def submit(site: FieldSite, coro):
    return asyncio.run_coroutine_threadsafe(coro, site.console.loop.loop)


def result_of(future, timeout: float):
    try:
        return future.result(timeout), None
    except Exception as exc:  # noqa: BLE001 - reported as the trial's failure
        future.cancel()
        return None, exc


def wait_record(device: Device, states: tuple[str, ...], since: float, timeout: float) -> dict | None:
    return wait_for(lambda: next((r for r in device.records() if r["created_at"] >= since - 1 and
                                  r["state"] in states), None), timeout, 0.002)
