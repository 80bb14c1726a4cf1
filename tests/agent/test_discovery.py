"""`edge-agent simulate --count 3` found through a real zeroconf browser bound to loopback, and gone on stop."""

from __future__ import annotations

import signal
import threading

import pytest
from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

from edge_console.core.protocol import SERVICE_TYPE
from tests.support.agent_harness import Agent, wait_until


class Recorder:
    def __init__(self, zc: Zeroconf):
        self.zc = zc
        self.present: dict[str, dict] = {}
        self.removed: set[str] = set()
        self.lock = threading.Lock()

    def on_change(self, zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            with self.lock:
                self.present.pop(name, None)
                self.removed.add(name)
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info:
            txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            with self.lock:
                self.present[name] = {"txt": txt, "port": info.port, "addresses": info.parsed_addresses()}


@pytest.fixture
def browser():
    zc = Zeroconf(interfaces=["127.0.0.1"])  # loopback only: never browse the real network from a test
    rec = Recorder(zc)
    b = ServiceBrowser(zc, SERVICE_TYPE, handlers=[rec.on_change])
    yield rec
    b.cancel()
    zc.close()


def test_simulated_fleet_is_discovered_and_unregisters_on_stop(browser, tmp_path):
    fleet = Agent.from_args(["simulate", "--count", "3", "--interface", "127.0.0.1", "--base-dir", str(tmp_path),
                             "--fps", "5"], tmp_path / "logs", expect=3).start()
    fleet_ids = {a.device_id for a in fleet.listening}

    def fleet_records() -> list[dict]:
        # Other agents may share loopback (another test's fixture): look only at this fleet's devices.
        with browser.lock:
            return [d for d in browser.present.values() if d["txt"].get("id") in fleet_ids]

    try:
        found = wait_until(lambda: len(r := fleet_records()) == 3 and r, timeout=60, what="3 devices over mDNS")
        assert {d["txt"]["name"] for d in found} == {a.name for a in fleet.listening}
        assert {d["port"] for d in found} == {a.port for a in fleet.listening}
        for d in found:
            assert set(d["txt"]) >= {"id", "name", "api", "model", "model_version", "arch"}
            assert d["txt"]["api"] == "1" and d["addresses"] == ["127.0.0.1"]
        assert {d["txt"]["model_version"] for d in found} == {"1.0.0", "2.0.0"}  # the fleet mixes model versions
    finally:
        rc = fleet.stop(signal.SIGTERM)
    assert rc == 0
    wait_until(lambda: not fleet_records(), timeout=30, what="goodbye packets")
    assert len(browser.removed) >= 3
