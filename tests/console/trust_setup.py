"""The tests' console identity, shared by every test fleet and enrolled on every test agent (see agents.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.client.trust_store import PinStore, console_identity


def pairing_code(state_dir: Path, role: str) -> str:
    """A one-time code, as `edge-agent pair` prints it on the device's own terminal."""
    out = subprocess.run([sys.executable, "-m", "edge_console.agent.cli", "pair", "--role", role, "--state-dir",
                          str(state_dir)], capture_output=True, text=True, timeout=60, check=True).stdout
    return out.split(": ", 1)[1].split()[0]


def agent_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.agent.cli", *args], capture_output=True, text=True,
                          timeout=60)


class TestTrust:
    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self._dir: Path | None = None
        self.fleets: weakref.WeakSet = weakref.WeakSet()
        self.runtimes: weakref.WeakSet = weakref.WeakSet()  # made without a Fleet (compare tests)
        self.agents: list = []

    @property
    def data_dir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="edge-console-test-trust-"))
            console_identity(self._dir)  # made once per test run: key generation is not free
        return self._dir

    def secure_config(self) -> Path:
        path = self.data_dir / "agent-secure.toml"
        if not path.exists():
            path.write_text("insecure_lab_mode = false\n")
        return path

    def enrol_on(self, state_dir: Path) -> None:
        identity = console_identity(self.data_dir)
        store = TrustStore(state_dir)
        if store.by_fingerprint(identity.fingerprint) is None:
            store.enrol("test console", identity.cert_pem, "admin")

    def agent_started(self, agent) -> None:
        if agent not in self.agents:
            self.agents.append(agent)
        # The headless commands (`edge-console compare --data-dir ...`) read the pins from the database there.
        pins = PinStore(self.data_dir / "console.sqlite")
        pin = pins.pin(agent.device_id, agent.certificate(), "admin", str(agent.address))
        pins.close()
        for runtime in list(self.runtimes):
            runtime.trust.remember(pin)
        for fleet in list(self.fleets):
            self.pin(fleet, agent)

    def fleet_made(self, fleet) -> None:
        self.fleets.add(fleet)
        for agent in self.agents:
            if agent.running:
                self.pin(fleet, agent)

    def agent_at(self, address):
        return next((a for a in self.agents if a.address == address and a.running), None)

    def trusted_runtime(self, runtime) -> None:
        """A runtime made without a Fleet (the compare tests): give it the pins the test agents were enrolled with."""
        pins = PinStore(self.data_dir / "console.sqlite")
        runtime.trust.load(pins.all())
        pins.close()
        self.runtimes.add(runtime)  # and the pins of agents started later

    def ssl_for(self, agent):
        """A TLS context that presents the tests' console certificate and accepts only this agent's."""
        from edge_console.core.trust.tls_identity import client_context

        return client_context(console_identity(self.data_dir), agent.certificate())

    @staticmethod
    def pin(fleet, agent) -> None:
        fleet.pin_device(agent.device_id, agent.certificate(), "admin", str(agent.address))


TEST_TRUST = TestTrust()
