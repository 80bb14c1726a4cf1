"""Fixtures of the defect regression tests (test_defects*.py): a release kit, and real agents on 127.0.0.1 with TLS
and pairing on (the default), each with a console identity enrolled as admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_console.core.paths import demo_model
from edge_console.core.releases.trust import install_root
from edge_console.core.trust.tls_identity import TlsIdentity
from tests.support.agents import AgentProcess, agent_args
from tests.support.trust import console_identity, device_certificate, enrol

from .releases import ReleaseKit


@dataclass
class SecureAgent:
    proc: AgentProcess
    console: TlsIdentity  # enrolled on the device
    state: Path

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def port(self) -> int:
        return int(self.proc.url.rsplit(":", 1)[1])

    @property
    def certificate(self) -> bytes:
        return device_certificate(self.state)


def start_secure_agent(folder: Path, *, role: str = "admin", env: dict | None = None,
                       before_start: Callable[[Path], None] | None = None, probation_s: float = 60.0,
                       console: TlsIdentity | None = None) -> SecureAgent:
    """`edge-agent run` with TLS on (parts-v1, small frames, no mDNS) on `folder/state`. `before_start(state)`
    prepares the state folder first (a device's disk as a power cut left it, an identity made long ago)."""
    state = folder / "state"
    state.mkdir(parents=True, exist_ok=True)
    if before_start is not None:
        before_start(state)
    console = console or console_identity(folder / "console")
    enrol(state, console, role)
    config = folder / "agent.toml"
    config.write_text(f"insecure_lab_mode = false\nprobation_s = {probation_s}\n")
    proc = AgentProcess(agent_args(demo_model("parts-v1"), state, "--config", str(config), "--no-advertise",
                                   "--fps", "5", "--width", "160", "--height", "120", secure=True), env=env)
    return SecureAgent(proc, console, state)


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> ReleaseKit:
    return ReleaseKit.create(tmp_path_factory.mktemp("defects-kit"), golden=2)


@pytest.fixture(scope="module")
def secure_agent(tmp_path_factory, kit):
    """One agent shared by a module's tests (starting one takes seconds on the 2-core CI box); it trusts the
    kit's release authority."""
    agent = start_secure_agent(tmp_path_factory.mktemp("secure-agent"), before_start=lambda state: install_root(
        state / "release-trust", kit.authority.root_json()))
    yield agent
    agent.proc.stop()
