"""The compare tests reuse the console's fixtures (offscreen Qt set before anything imports it, the check that
fails a test leaving threads running, the Qt binding guard, console fleets on 127.0.0.1) and share two real
agents on 127.0.0.1: one running parts-v2, one running the weaker parts-v1 (as the demo's "Packing line 2")."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tests.support.screens import use_test_screens

use_test_screens()  # offscreen, a 1920x1080 and a 1366x768 screen; before anything imports Qt

import pytest  # noqa: E402

from edge_console.client.net.addresses import DeviceAddress  # noqa: E402
from edge_console.client.runtime import ConsoleRuntime  # noqa: E402
from edge_console.console.compare.panel import ComparePanel  # noqa: E402
from edge_console.console.device_state import DeviceState  # noqa: E402
from edge_console.console.gui_dispatch import GuiDispatcher  # noqa: E402
from edge_console.core.detection.model_library import ModelLibrary  # noqa: E402
from edge_console.core.paths import demo_model, models_dir  # noqa: E402
from tests.support.agent_harness import Agent  # noqa: E402
from tests.support.console_fixtures import fleet_factory, no_leaked_threads, sound_qt_binding  # noqa: E402, F401
from tests.support.console_trust import TEST_TRUST, console_agent, with_a_frame  # noqa: E402


@pytest.fixture(scope="package")  # stopped when this folder is done: idle agents would burn CPU for the rest
def v2_device(tmp_path_factory) -> Iterator[Agent]:
    agent = with_a_frame(console_agent("Press line 1", tmp_path_factory.mktemp("v2") / "state", advertise=False,
                                       model=demo_model("parts-v2")))
    yield agent
    agent.stop()


@pytest.fixture(scope="package")  # stopped when this folder is done: idle agents would burn CPU for the rest
def v1_device(tmp_path_factory) -> Iterator[Agent]:
    agent = with_a_frame(console_agent("Packing line 2", tmp_path_factory.mktemp("v1") / "state", advertise=False,
                                       model=demo_model("parts-v1")))
    yield agent
    agent.stop()


@pytest.fixture
def console_runtime(qapp) -> Iterator[ConsoleRuntime]:
    """The console's threads and HTTP client, as a main window gets them from its fleet; closed (every thread
    joined) after the test."""
    dispatcher = GuiDispatcher()
    runtime = ConsoleRuntime(dispatcher.post, data_dir=TEST_TRUST.data_dir).start()
    TEST_TRUST.trusted_runtime(runtime)
    yield runtime
    dispatcher.close()
    runtime.close()


def device_state(address: DeviceAddress, name: str) -> DeviceState:
    """The state a fleet would have for this device once its session answered: a test agent is paired (admin);
    anything else here is a fake device speaking plain HTTP, as an agent in insecure lab mode does."""
    agent = TEST_TRUST.agent_at(address)
    state = DeviceState(address, device_id=agent.device_id if agent else None, name=name)
    state.trust = "admin" if agent else "insecure lab mode"
    return state


@pytest.fixture
def open_panel(qtbot, console_runtime) -> Iterator[Callable[..., ComparePanel]]:
    """Compare panels on real devices; each is shut down, and every request it made has ended, after the test."""
    panels: list[ComparePanel] = []

    def make(address: DeviceAddress, name: str = "device under test", library: ModelLibrary | None = None,
             size: tuple[int, int] = (1400, 860)) -> ComparePanel:
        panel = ComparePanel(device_state(address, name), library or ModelLibrary([models_dir()]), console_runtime)
        qtbot.addWidget(panel)
        panel.resize(*size)
        panel.show()
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.shutdown()
        assert panel.worker is None or panel.worker.join(30), "the compare worker's requests did not end"
