"""Faults on the devices themselves: power cuts (kill -9) at every step of an update, a disk that fills up during
staging and during telemetry writes, clocks hours off. Mechanisms: see faults.py."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from pathlib import Path

from .checks import UNFINISHED, check_device, general, result_of, stuck_records, submit, wait_record
from .delivery import (
    PushState,
    create_upload,
    delete_upload,
    get_json,
    part_file,
    post_json,
    push_release,
    upload_meta,
    wait_for,
)
from .devices import Device
from .results import FaultResult
from .site import FieldSite
from .watch import DeviceWatch

# -- power cuts at every step of an update ------------------------------------------------------------------------
STEPS = ("upload", "staged", "verified", "checked", "active", "rollback")


def kill_9_at_steps(site: FieldSite, rng: random.Random, trials_per_step: int, queue,
                    steps: tuple[str, ...] = STEPS, pool=None) -> FaultResult:
    """Every step `trials_per_step` times; the pool's devices work in parallel, each through its share of the
    steps in turn (the seed decides who gets which)."""
    result = FaultResult("kill_9_update_steps", "SIGKILL of the agent at each lifecycle step (upload, staged, "
                                                "verified, checked, active/probation, rollback), then a restart")
    devices = list(pool or general(site))
    work = [step for step in steps for _ in range(trials_per_step)]
    rng.shuffle(work)
    shares = {d.index: work[i::len(devices)] for i, d in enumerate(devices)}
    seeds = {d.index: rng.randrange(2**32) for d in devices}
    outcomes: list[tuple[str, bool, str, bool, dict]] = []

    def run_share(device: Device) -> None:
        local = random.Random(seeds[device.index])
        for step in shares[device.index]:
            try:
                ok, why, lost, extra = _kill_at(site, device, step, local, queue)
            except Exception as exc:  # noqa: BLE001 - the harness's own trouble is reported, not hidden
                ok, why, lost, extra = False, f"{device.name} at {step}: {exc!r}", False, {}
            outcomes.append((step, ok, why, lost, extra))

    threads = [threading.Thread(target=run_share, args=(d,), name=f"kill-9 {d.name}") for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for step, ok, why, lost, extra in sorted(outcomes, key=lambda o: STEPS.index(o[0])):
        known = extra.pop("known", None)
        for key, value in extra.items():
            result.time(key, value)
        result.trial(ok, f"at {step}: {why}", lost, known=known)
        counts = result.notes.setdefault("per_step", {}).setdefault(step, [0, 0])
        counts[0] += 1
        counts[1] += ok
    return result


def _restart(device: Device) -> float:
    device.kill()
    return device.start()


def _kill_at(site: FieldSite, device: Device, step: str, rng: random.Random, queue):
    tls = site.console.tls_for(device.id)
    extra: dict[str, float] = {}
    if step == "rollback":
        lc = device.lifecycle()
        if not lc.get("active"):  # nothing to roll back from yet: install something first
            version, release = queue.next()
            site.console.loop.call(push_release(device.base_url, tls, release), timeout=120)
        future = submit(site, post_json(device.base_url, tls, "/v1/models/rollback", {}))
        time.sleep(rng.uniform(0.0, 0.08))
        _restart(device)
        result_of(future, 30)
        ok, why, lost = check_device(site, device)
        return ok, why, lost, extra
    version, release = queue.next()
    state = PushState()
    since = time.time()
    until = ("active",) if step == "active" else ("good",)
    future = submit(site, push_release(device.base_url, tls, release, state=state, until=until))
    if step == "upload":
        wait_for(lambda: state.upload_url, 15)
        part = part_file(device, state.upload_url)
        size = release.stat().st_size
        wait_for(lambda: part.exists() and part.stat().st_size >= rng.uniform(0.2, 0.8) * size, 30, 0.002)
        _restart(device)
        t_up = time.time()
        meta = upload_meta(device, state.upload_url) or {}
        grew = wait_for(lambda: part.exists() and part.stat().st_size > meta.get("offset", 0), 30, 0.005)
        extra["upload_resume_after_restart_s"] = time.time() - t_up if grew else None
        record, error = result_of(future, 120)
        ok, why, lost = check_device(site, device)
        good = record is not None and record.get("state") == "good"
        return ok and good, f"{why}; push ended {error or (record or {}).get('state')}", lost, extra
    if step == "staged":
        # A release is staged as it arrives (agent/updates/_follower.py): its record is "staged" only for the few
        # milliseconds from the install request to the verdict on its signatures, too short to see on disk.
        # So the kill follows the device's answer to the install request, as closely as the trial can.
        reached = wait_for(lambda: state.update_id, 60, 0.0005)
    else:
        reached = wait_record(device, (step,) if step != "active" else ("active",), since, 60)
    if reached is None:
        states = [r["state"] for r in device.records() if r["created_at"] >= since - 1]
        result_of(future, 60)
        return False, f"{version} never reached {step} ({states})", False, extra
    time.sleep(rng.uniform(0.0, 0.003 if step == "staged" else 0.03))
    _restart(device)
    record, error = result_of(future, 120)
    if step == "active":  # probation resumes after the restart and must pass
        good = wait_record(device, ("good", "rolled_back"), since, 60)
        ok, why, lost = check_device(site, device)
        return ok and good is not None and good["state"] == "good", f"{why}; after restart {good}", lost, extra
    ok, why, lost = check_device(site, device)
    mine = [r for r in device.records() if r["created_at"] >= since - 1]
    final = mine[-1]["state"] if mine else None  # what the device says became of this update
    active = device.lifecycle().get("active") or {}
    if final == "interrupted" and active.get("version") == version:  # D8 (test_defects.py), fixed: a regression
        return False, (f"{device.name}: killed at {step}: the record says 'interrupted, nothing was changed' but "
                       f"the device runs {version} in {device.lifecycle().get('state')}"), lost, extra
    if final == "interrupted" or final is None:  # delivered again, as the record says: it must install
        again, error2 = result_of(submit(site, push_release(device.base_url, tls, release)), 120)
        redelivered = again is not None and again.get("state") == "good"
        ok2, why2, lost2 = check_device(site, device)
        return ok and ok2 and redelivered, (f"{why}; {why2}; the push said {error!r}, the device {final}; delivered "
                                            f"again: {error2 or (again or {}).get('state')} "
                                            f"{(again or {}).get('reason', '')}"), lost or lost2, extra
    return ok and final in ("good", "rolled_back"), f"{why}; the update ended {final} ({error!r})", lost, extra


# -- a full disk --------------------------------------------------------------------------------------------------
def fill_disk(folder: Path) -> Path:
    """Another writer takes every free byte of the filesystem holding `folder`."""
    filler = folder / f".filler-{time.monotonic_ns()}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        st = os.statvfs(folder)
        want = st.f_bavail * st.f_frsize
        while want > 0:
            try:
                os.posix_fallocate(fd, os.lseek(fd, 0, os.SEEK_END), want)
                os.lseek(fd, 0, os.SEEK_END)
                want = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                want //= 2
                if want < 4096:
                    break
    finally:
        os.close(fd)
    return filler


def disk_full(site: FieldSite, rng: random.Random, trials: int, queue,
              follow_timeout: float = 40.0) -> tuple[FaultResult, FaultResult]:
    """(during staging, during telemetry history writes) on the device whose state folder is a small tmpfs."""
    staging = FaultResult("disk_full_staging", "tmpfs state folder filled by another writer the moment a release "
                                               "is staged; then freed")
    history = FaultResult("disk_full_telemetry", "tmpfs state folder filled by another writer while the agent "
                                                 "writes telemetry history every second; then freed")
    device = site.devices[site.roles["small_disk"][0]]
    tls = site.console.tls_for(device.id)
    for _ in range(trials):
        # 1. the disk fills the moment the release is staged
        version, release = queue.next()
        before = device.store_snapshot()
        since = time.time()
        future = submit(site, push_release(device.base_url, tls, release))
        filler = None
        try:
            staged = wait_record(device, UNFINISHED + ("rejected",), since, 60)
            filler = fill_disk(device.state)
            staging.notes.setdefault("filled_at", []).append(staged["state"] if staged else None)
            record, error = result_of(future, follow_timeout)
            told = (record or {}).get("state")  # the device's verdict, as its API gave it to the console's push
            store_same = device.store_snapshot() == before or told == "good"
            staging.trial(told in ("rejected", "good") and store_same and error is None,
                          f"{device.name}: disk filled at {staged and staged['state']}: the console's push got "
                          f"{error!r} / {told!r}; store {'unchanged' if store_same else 'CHANGED'}",
                          lost=device.expected_model_sha() not in device.verified_models())
        finally:
            if filler is not None:
                filler.unlink(missing_ok=True)
        # A verdict the full disk could not take is told at once and written when there is room (D3): the filler
        # may keep even the room the update's clean-up frees, so the record on disk is judged once it is gone.
        def written(since: float = since) -> str | None:
            mine = [r for r in device.records() if r["created_at"] >= since - 1]
            return mine[-1]["state"] if mine and mine[-1]["state"] in ("rejected", "good") else None
        on_disk = wait_for(written, 15, 0.5)
        staging.trial(on_disk is not None and (told is None or on_disk == told),
                      f"{device.name}: the verdict {told!r} was not on disk 15 s after the disk was freed "
                      f"(records: {[r['state'] for r in device.records() if r['created_at'] >= since - 1]})")
        ok, why, lost = check_device(site, device, timeout=15)
        staging.trial(ok, f"after the disk was freed: {why}", lost)
        if stuck_records(site, device):  # what an operator would do: restart it (the record becomes interrupted)
            staging.notes["restarted_to_clear_a_stuck_update"] = staging.notes.get(
                "restarted_to_clear_a_stuck_update", 0) + 1
            device.kill()
            device.start()
        # 2. the disk fills while the agent writes telemetry history every second (an upload was announced
        # before: it holds its space, and deleting it at zero bytes is still written in the audit log)
        _, announced, _ = site.console.loop.call(create_upload(device.base_url, tls, 1000), timeout=15)
        filler = fill_disk(device.state)
        try:
            full = wait_for(lambda: any("disk full" in r for r in _health(site, device).get("reasons", [])), 15, 0.5)
            alive = _health(site, device).get("status") in ("ok", "degraded")
            history.trial(bool(full) and alive, f"{device.name}: disk full not reported in health within 15 s "
                                                f"(health {_health(site, device)})")
            status, _, refusal = site.console.loop.call(create_upload(device.base_url, tls, 1000), timeout=15)
            history.trial(status == 507 and "disk" in refusal.get("error", ""),
                          f"{device.name}: a new upload at zero bytes free got HTTP {status} {refusal}")
            if announced:
                deleted = site.console.loop.call(delete_upload(device.base_url, tls, announced), timeout=15)
                audited = any(e["event"] == "upload deleted" and e["details"].get("upload") == announced
                              for e in device.audit_entries())
                history.trial(deleted == 204 and audited, f"{device.name}: deleting an upload at zero bytes free: "
                                                          f"HTTP {deleted}, in the audit log: {audited}")
        finally:
            filler.unlink(missing_ok=True)
        t_free = time.time()
        cleared = wait_for(lambda: not any("disk full" in r for r in _health(site, device).get("reasons", [])),
                           15, 0.5)
        history.time("history_recovery_s", time.time() - t_free if cleared else None)

        def newest() -> float:
            _, page = site.console.loop.call(get_json(device.base_url, tls, "/v1/telemetry/history?limit=5"))
            return max((s["ts"] for s in page.get("samples", [])), default=0)

        # Polled, not read once: the write that clears "disk full" may be of a sample taken just before the space
        # came back; the next one, a second later, is the first taken after.
        fresh = wait_for(lambda t=t_free: newest() > t, 15, 0.5)
        history.trial(bool(cleared) and bool(fresh),
                      f"{device.name}: " + ("no history sample taken after space came back within 15 s" if cleared
                                            else "health still says disk full 15 s after space came back"))
        ok, why, lost = check_device(site, device, timeout=15)
        history.trial(ok, f"after the telemetry disk-full: {why}", lost)
    return staging, history


def _health(site: FieldSite, device: Device) -> dict:
    try:
        return site.console.loop.call(get_json(device.base_url, site.console.tls_for(device.id), "/v1/health"),
                                      timeout=15)[1]
    except Exception:  # noqa: BLE001
        return {}


# -- clocks -------------------------------------------------------------------------------------------------------
def clock_skew(site: FieldSite, rng: random.Random, trials: int, queue) -> FaultResult:
    result = FaultResult("clock_skew", "libfaketime: the agent's wall clock +6 h / -6 h from the console's")
    for index in site.roles["skewed"]:
        device = site.devices[index]
        skew_s = _skew_seconds(device.faketime)
        watch = DeviceWatch(site.console, device, stream=False)
        try:
            clock = watch.wait(lambda s: s.clock, 20)
            history = watch.wait(lambda s: s.history_samples, 20)
            offset = clock[-1][0] if clock else None
            result.trial(offset is not None and abs(offset - skew_s) < 2.0,
                         f"{device.name}: clock offset {offset} s, the device is off by {skew_s} s")
            result.time("offset_error_s", abs(offset - skew_s) if offset is not None else None)
            result.trial(bool(history), f"{device.name}: no telemetry history filled with its clock off")
        finally:
            watch.close()
        for _ in range(trials):
            version, release = queue.next()
            record, error = result_of(submit(site, push_release(device.base_url, site.console.tls_for(device.id),
                                                               release)), 120)
            ok, why, lost = check_device(site, device)
            result.trial(ok and record is not None and record.get("state") == "good",
                         f"{device.name}: {version} with the clock {device.faketime}: "
                         f"{error or (record or {}).get('reason') or (record or {}).get('state')}; {why}", lost)
    return result


def _skew_seconds(spec: str | None) -> float:
    if not spec:
        return 0.0
    sign = -1 if spec.startswith("-") else 1
    number, unit = spec.lstrip("+-")[:-1], spec[-1]
    return sign * float(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
