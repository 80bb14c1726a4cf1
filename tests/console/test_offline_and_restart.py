"""Stopping an agent turns its device offline in the console; restarting it (same id) brings the stream back,
whether it returns on a new port (found again through mDNS) or on the same port (added by address)."""

from __future__ import annotations

from edge_console.console.widgets.overlay import OverlaySettings
from edge_console.console.widgets.preview_canvas import PreviewCanvas

LONG = 60_000


def watch(qtbot, state) -> PreviewCanvas:
    canvas = PreviewCanvas(state, OverlaySettings())
    qtbot.addWidget(canvas)
    canvas.resize(480, 360)
    canvas.show()
    return canvas


def wait_streaming(qtbot, state, canvas, more_than: int = 0) -> None:
    qtbot.waitUntil(lambda: state.status == "online" and state.stream_live and state.frames_received > more_than
                    and canvas.frame is not None, timeout=LONG)


def wait_offline(qtbot, state, canvas) -> None:
    qtbot.waitUntil(lambda: state.status == "offline" and not state.stream_live, timeout=LONG)
    assert canvas._banner().startswith("offline")
    assert not canvas.grab().isNull()  # the last frame stays, under an "offline — reconnecting" banner


def test_restart_on_a_new_port_is_found_again_through_mdns(qtbot, fleet_factory, agent_factory):
    agent = agent_factory("console-restart-mdns").start()
    fleet = fleet_factory(discover=True)
    qtbot.waitUntil(lambda: any(s.device_id == agent.device_id for s in fleet.states), timeout=LONG)
    state = next(s for s in fleet.states if s.device_id == agent.device_id)
    canvas = watch(qtbot, state)
    wait_streaming(qtbot, state, canvas)

    agent.stop()
    wait_offline(qtbot, state, canvas)
    assert any("went offline" in e.message for e in state.errors)

    first_address, frames = agent.address, state.frames_received
    agent.start()  # same state dir: same id; --port 0: most likely another port
    wait_streaming(qtbot, state, canvas, more_than=frames)
    assert state.address == agent.address
    assert agent.address != first_address or state.address == first_address
    assert [s.device_id for s in fleet.states].count(agent.device_id) == 1  # the same row, not a new device
    canvas.detach()


def test_restart_on_the_same_port_reconnects_a_manually_added_device(qtbot, fleet_factory, agent_factory):
    agent = agent_factory("console-restart-manual", advertise=False).start()
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(agent.address)
    canvas = watch(qtbot, state)
    wait_streaming(qtbot, state, canvas)

    agent.stop()
    wait_offline(qtbot, state, canvas)
    frames = state.frames_received
    agent.start(port=agent.address.port)
    wait_streaming(qtbot, state, canvas, more_than=frames)  # backoff retries find it without any help
    assert state.device_id == agent.device_id
    canvas.detach()
