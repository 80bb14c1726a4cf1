"""The tests' console identity, shared by every test fleet and enrolled on every console-test agent.

Trust as on a site, without a person typing codes: before an agent starts, the tests' console identity is enrolled
on it (what `edge-agent enrol` does), and once it listens every live test fleet and runtime pins its certificate
(`TEST_TRUST.agent_started`), exactly as the console does after a pairing.
"""

from __future__ import annotations

import tempfile
import time
import urllib.request
import weakref
from pathlib import Path

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.client.trust_store import PinStore, console_identity
from edge_console.core.paths import demo_model
from tests.support.agent_harness import Agent

FIRST_FRAME_TIMEOUT_S = 60.0


class TestTrust:
    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self._dir: Path | None = None
        self.fleets: weakref.WeakSet = weakref.WeakSet()
        self.runtimes: weakref.WeakSet = weakref.WeakSet()  # made without a Fleet (compare tests)
        self.agents: list[Agent] = []

    @property
    def data_dir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="edge-console-test-trust-"))
            console_identity(self._dir)  # made once per test run: key generation is not free
        return self._dir

    @property
    def identity(self):
        return console_identity(self.data_dir)

    def enrol_on(self, state_dir: Path, role: str = "admin") -> None:
        """The device in `state_dir` trusts the tests' console, while no test fleet pins it (a test of what the
        console refuses)."""
        store = TrustStore(state_dir)
        if store.by_fingerprint(self.identity.fingerprint) is None:
            store.enrol("test console", self.identity.cert_pem, role)

    def agent_started(self, agent: Agent) -> None:
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

    def agent_at(self, address) -> Agent | None:
        return next((a for a in self.agents if a.running and a.address == address), None)

    def trusted_runtime(self, runtime) -> None:
        """A runtime made without a Fleet (the compare tests): give it the pins the test agents were enrolled with."""
        pins = PinStore(self.data_dir / "console.sqlite")
        runtime.trust.load(pins.all())
        pins.close()
        self.runtimes.add(runtime)  # and the pins of agents started later

    def ssl_for(self, agent: Agent):
        """A TLS context that presents the tests' console certificate and accepts only this agent's."""
        from edge_console.core.trust.tls_identity import client_context

        return client_context(self.identity, agent.certificate())

    @staticmethod
    def pin(fleet, agent: Agent) -> None:
        fleet.pin_device(agent.device_id, agent.certificate(), "admin", str(agent.address))


TEST_TRUST = TestTrust()


def console_agent(name: str, state_dir: Path, *, fps: float = 10.0, advertise: bool = True,
                  model: Path | None = None, source: str = "synthetic", enrol: bool = True, role: str = "admin",
                  **options) -> Agent:
    """An agent (not started) for the console tests: synthetic camera and parts-v2 unless told otherwise,
    announced over mDNS on loopback, and paired with the tests' console (`enrol=False`: a device this console is
    not paired with). `options` are the harness's (`release_root`, `settings`, `port`...)."""
    return Agent(state_dir, name=name, model=model or demo_model("parts-v2"), fps=fps, advertise=advertise,
                 source=source, console=TEST_TRUST.identity if enrol else None, role=role,
                 on_started=TEST_TRUST.agent_started if enrol else None, **options)


def with_a_frame(agent: Agent, timeout: float = FIRST_FRAME_TIMEOUT_S) -> Agent:
    """`agent`, started, once it has inferred its first frame: a device still starting answers /v1/frame with 503,
    which a panel rightly shows as a message, and a test wants frames."""
    agent.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"https://{agent.address}/v1/frame?format=png", timeout=5,
                                        context=TEST_TRUST.ssl_for(agent)) as response:
                if response.status == 200:
                    return agent
        except OSError:  # HTTPError 503 included: no inferred frame yet
            pass
        if time.monotonic() > deadline or not agent.running:
            agent.stop()
            raise RuntimeError(f"agent {agent.name} inferred no frame in {timeout} s:\n"
                               f"{agent.log()[-2000:]}")
        time.sleep(0.1)
