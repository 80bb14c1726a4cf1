"""The site leaves nothing behind, whatever ends its run: a clean close, Ctrl-C, SIGTERM, or kill -9 of its owner
(then its detached reaper cleans up); and a new run removes what a dead run left. Root only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.agent_harness import ROOT

from .netns import (
    BASE,
    PREFIX,
    Site,
    _our_mounts,
    _our_namespaces,
    clean_leftovers,
    host_network_snapshot,
    run,
    unavailable_reason,
)

pytestmark = [pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or ""),
              pytest.mark.timeout(120)]

OWNER = """
import sys, time
from tests.field_trial.netns import Site
site = Site(devices=2)
site.small_filesystem(site.dir / "disk", 8)
print(site.tag, flush=True)
time.sleep(600)
"""


def _gone(tag: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [n for n in _our_namespaces() if n.startswith(tag + "-")] and not _our_mounts(BASE / tag) \
                and not (BASE / tag).exists():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_a_run_ended_any_way_leaves_nothing_behind(how):
    before = host_network_snapshot()
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    tag = owner.stdout.readline().strip()
    try:
        assert tag.startswith(PREFIX) and len([n for n in _our_namespaces() if n.startswith(tag + "-")]) == 5
        assert _our_mounts(BASE / tag)
        owner.send_signal(how)
        owner.wait(30)
        assert _gone(tag), f"{tag} left behind after {how!r}"
    finally:
        if owner.poll() is None:
            owner.kill()
    assert host_network_snapshot() == before


def test_a_new_run_removes_what_a_dead_run_left():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = f"{PREFIX}{dead.pid}s1"
    run("ip", "netns", "add", f"{tag}-br")
    (BASE / tag).mkdir(parents=True, exist_ok=True)
    try:
        assert tag in clean_leftovers()
        assert _gone(tag, 1)
    finally:
        run("ip", "netns", "del", f"{tag}-br", check=False)


def test_a_site_has_no_route_out_and_no_address_on_the_host():
    before = host_network_snapshot()
    site = Site(devices=2)
    try:
        for ns in [site.console_ns, *site.device_ns]:
            routes = run("ip", "netns", "exec", ns, "ip", "-4", "route", "show", "table", "all")
            assert "default" not in routes
            assert all(line.startswith(("192.0.2.0/24", "local ", "broadcast ", "multicast ")) or "dev lo" in line
                       for line in routes.splitlines()), routes
        assert host_network_snapshot() == before  # nothing of ours in the host's namespace
    finally:
        site.close()
    assert host_network_snapshot() == before
    assert not os.path.exists(site.dir)
