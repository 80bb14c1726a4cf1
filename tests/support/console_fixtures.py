"""Fixtures of every test folder that drives the Qt console (console, compare, releases_ui): offscreen Qt with the
test screens, a strict thread-leak check, the Qt binding guard, real agents on 127.0.0.1 paired with the tests'
console, and console fleets browsing 127.0.0.1 only. A folder's conftest imports the ones it uses, by name."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.screens import use_test_screens

use_test_screens()  # offscreen, a 1920x1080 and a 1366x768 screen; before anything imports Qt

import pytest  # noqa: E402

from edge_console.console.fleet import Fleet  # noqa: E402
from edge_console.console.qt_compat import signal_emit_drops_true_references  # noqa: E402
from tests.support.agent_harness import LOOPBACK, Agent  # noqa: E402
from tests.support.console_trust import TEST_TRUST, console_agent  # noqa: E402

THREAD_GRACE_S = 5.0


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running: the console must join its network, decoder and store threads."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE_S
    leaked: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.05)
    pytest.fail(f"test left threads running: {[t.name for t in leaked]}")


@pytest.fixture(scope="session", autouse=True)
def sound_qt_binding() -> None:
    # PySide6 6.12.0 drops a reference to True on every emit and aborts the interpreter (see qt_compat.py).
    assert not signal_emit_drops_true_references(), "install PySide6-Essentials<6.12: 6.12.0 corrupts refcounts"


@pytest.fixture(scope="package")  # stopped when this folder is done: idle agents would burn CPU for the rest
def shared_agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Agent]]:
    """Two advertised agents for the tests that only watch (discovery, preview, charts). Tests must not stop them."""
    base = tmp_path_factory.mktemp("shared-agents")
    agents = [console_agent(f"console-test-{i}", base / f"dev{i}") for i in (1, 2)]
    try:
        for agent in agents:
            agent.start()
        yield agents
    finally:
        for agent in agents:
            agent.stop()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """Agents (not started) a test may start, stop and restart (`console_agent`'s options); all stopped at the
    end of the test."""
    made: list[Agent] = []

    def make(name: str, **options: object) -> Agent:
        agent = console_agent(name, tmp_path / f"agent-{len(made)}", **options)  # type: ignore[arg-type]
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()


@pytest.fixture
def fleet_factory(tmp_path: Path, qapp) -> Iterator[Callable[..., Fleet]]:
    """Console fleets browsing 127.0.0.1 only (never all interfaces on a shared machine); closed after the test."""
    made: list[Fleet] = []

    def make(*, discover: bool = True, database: Path | None = None, trusted: bool = True,
             data_dir: Path | None = None) -> Fleet:
        """`trusted`: the fleet is paired with every test agent (as after pairing on a site); False: it is not,
        and has a console identity of its own (in `data_dir`, to keep it across a restart)."""
        fleet = Fleet(database or tmp_path / f"console-{len(made)}.sqlite", [LOOPBACK], discover=discover,
                      data_dir=TEST_TRUST.data_dir if trusted else data_dir or tmp_path / f"untrusted-{len(made)}")
        made.append(fleet)
        fleet.start()
        if trusted:
            TEST_TRUST.fleet_made(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()
