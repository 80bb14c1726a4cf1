"""Fixtures of the defect regression tests (test_defects*.py): a release kit, and real agents on 127.0.0.1 with TLS
and pairing on (the default), each with a console identity enrolled as admin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_console.core.paths import demo_model
from tests.support.agent_harness import Agent

from .releases import ReleaseKit


def _secure_agent(folder: Path, *, role: str = "admin", **options) -> Agent:
    """`edge-agent run` with TLS on (parts-v1, small frames, no mDNS) on `folder/state`, its own console enrolled
    as `role`. `before_start(state)` (an option) prepares the state folder first: a device's disk as a power cut
    left it, an identity made long ago."""
    return Agent(folder / "state", model=demo_model("parts-v1"), role=role, fps=5, size=(160, 120),
                 settings={"insecure_lab_mode": False, "probation_s": 60.0}, **options)


@pytest.fixture
def start_secure_agent() -> Iterator[Callable[..., Agent]]:
    """Start agents as `_secure_agent` makes them (`start_secure_agent(folder, role=..., env=..., console=...)`);
    each is stopped after the test."""
    made: list[Agent] = []

    def start(folder: Path, **options) -> Agent:
        made.append(_secure_agent(folder, **options))
        return made[-1].start()

    yield start
    for agent in made:
        agent.stop()


@pytest.fixture(scope="session")  # built once: signing and golden frames are not free
def kit(tmp_path_factory) -> ReleaseKit:
    return ReleaseKit.create(tmp_path_factory.mktemp("defects-kit"), golden=2)


@pytest.fixture(scope="module")
def secure_agent(tmp_path_factory, kit) -> Iterator[Agent]:
    """One agent shared by a module's tests (starting one takes seconds on the 2-core CI box); it trusts the
    kit's release authority."""
    agent = _secure_agent(tmp_path_factory.mktemp("secure-agent"), release_root=kit.authority.root_json()).start()
    yield agent
    agent.stop()
