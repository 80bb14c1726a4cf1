"""Hostile clients on the site (issue 21): the rogue host (rogue.py `flood`, in a namespace of its own) sends a
device request bodies that never arrive and TLS handshakes that never finish, while the console watches the
device's stream and asks it for its health on a fresh connection every second. Mechanisms: see faults.py."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from .checks import check_device, general
from .delivery import get_json, wait_for
from .devices import Device
from .results import FaultResult
from .site import FieldSite
from .watch import DeviceWatch

BODIES, HALF_OPEN = 300, 1500


def hostile_clients(site: FieldSite, rng: random.Random, trials: int, pool=None) -> FaultResult:
    result = FaultResult("hostile_clients", f"from the rogue host: {BODIES} unpaired TLS connections whose request "
                                            f"body never arrives, then {HALF_OPEN} half-open TLS handshakes")
    for _ in range(trials):
        device = rng.choice(pool or general(site))
        watch = DeviceWatch(site.console, device)
        try:
            if watch.wait_frames(time.time() - 60, count=3, timeout=30) is None:
                result.trial(False, f"{device.name}: no stream before the fault")
                continue
            problems, figures = _attacked(site, device, watch)
            ok, why, lost = check_device(site, device)
            held = figures.get("held_s") or [None]
            result.time("body_held_max_s", max(held) if held[0] is not None else None)
            result.notes.setdefault("rogue", []).append({k: v for k, v in figures.items() if k != "held_s"})
            result.trial(ok and not problems, f"{device.name}: " + "; ".join(problems + ([] if ok else [why])), lost)
        finally:
            watch.close()
    return result


def _descriptors(device: Device) -> int:
    return len(os.listdir(f"/proc/{device.agent.pid}/fd"))


def _attacked(site: FieldSite, device: Device, watch: DeviceWatch) -> tuple[list[str], dict]:
    """One attack from the rogue host; what went wrong, and the rogue's figures (with the device's descriptors)."""
    fds_before, t0 = _descriptors(device), time.time()
    rogue = subprocess.Popen([*site.net.exec_prefix(site.net.extra_ns[0]), sys.executable, "-m",
                              "tests.field_trial.rogue", "flood", device.addr, str(device.port), str(BODIES),
                              str(HALF_OPEN)], cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    output: list[tuple[str, str]] = []
    reader = threading.Thread(target=lambda: output.append(rogue.communicate(timeout=120)), daemon=True)
    reader.start()
    answers, peak = [], fds_before
    try:
        while reader.is_alive():
            try:
                answers.append(site.console.loop.call(get_json(device.base_url, site.console.tls_for(device.id),
                                                               "/v1/health"), timeout=20)[0])
            except Exception as exc:  # noqa: BLE001 - refused or timed out: the trial's failure
                answers.append(type(exc).__name__)
            peak = max(peak, _descriptors(device))
            time.sleep(1.0)
    finally:
        if rogue.poll() is None:
            rogue.kill()
        reader.join(10)
    out, err = output[0] if output else ("", "")
    figures = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    frames = len(watch.seen.frames_after(t0))
    back = wait_for(lambda: _descriptors(device) <= fds_before + 4, 20, 0.5)
    figures.update(peak_fds=peak, fds_before=fds_before, console_answers=len(answers), frames=frames)
    if not figures.get("bodies_sent"):
        return [f"the rogue host sent nothing: {err[-300:]!r}"], figures
    held, sent, closed = figures["held_s"], figures["half_open_sent"], figures["half_open_closed_by_device"]
    problems = [
        figures["bodies_sent"] < BODIES * 0.9 and f"only {figures['bodies_sent']} of {BODIES} bodies got through",
        max(held) >= 25 and f"a body that never arrived held its connection {max(held):.0f} s (deadline 10 s)",
        # (a few may never reach the agent: the kernel drops what overflows its accept queue, and says nothing)
        closed < sent * 0.95 and f"{sent - closed} of {sent} half-open handshakes outlived their deadline",
        any(a != 200 for a in answers) and f"the console's health requests got {answers}",
        frames < 5 and f"only {frames} stream frames reached the console during the attack",
        peak - fds_before >= 480 and f"{peak} descriptors at the peak ({fds_before} before)",
        not back and f"descriptors did not come back: {_descriptors(device)} ({fds_before} before)",
    ]
    return [p for p in problems if p], figures
