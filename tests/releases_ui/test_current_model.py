"""Issue 22 (2): after a rollout or a rollback, Details and the Compare panel's labels kept the model the device
ran before ("Device: parts 1.0.0" on a device running parts 2.0.0) while the overlay showed the new one. Now the
device's session notices the switch in its telemetry (each sample names the model's hash) and reads /v1/info
again: one source, DeviceState.info, for every view. A real agent, a real signed release, the real window."""

from __future__ import annotations

import asyncio

import aiohttp

from edge_console.client.releases.push import push
from tests.support.console_trust import TEST_TRUST

from .support import LONG, add_and_wait, device_api, make_site, open_window, running, trusting_agent


def _deliver(agent, release) -> dict:
    async def go():
        async with aiohttp.ClientSession() as session:
            return await push(session, f"https://{agent.address}", TEST_TRUST.ssl_for(agent), release,
                              until=("active", "good"))
    return asyncio.run(go())


def test_details_and_compare_labels_follow_the_model_the_device_runs(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agent = trusting_agent(agent_factory, "Line 4", site, probation_s=30.0)
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    (state,) = add_and_wait(fleet, [agent], qtbot)
    window.set_current(state)
    compare = window.open_compare(state)
    qtbot.waitUntil(lambda: compare.opened is not None and compare.run_count > 0, timeout=LONG)
    assert "runs parts 1.0.0" in compare.setup_label.text()

    record = _deliver(agent, release)
    assert record["state"] in ("active", "good") and running(agent) == ("parts", "2.0.0")
    qtbot.waitUntil(lambda: state.model_version == "2.0.0", timeout=LONG)  # within a telemetry sample or two
    window.details.refresh()
    assert "2.0.0" in window.details.browser.toPlainText()
    qtbot.waitUntil(lambda: "runs parts 2.0.0" in compare.setup_label.text(), timeout=LONG)
    compare.compare_now()
    qtbot.waitUntil(lambda: compare.device_view.caption.startswith("Device: parts 2.0.0"), timeout=LONG)

    device_api(agent, "/v1/models/rollback", {})  # back to the factory model, by another console
    qtbot.waitUntil(lambda: state.model_version == "1.0.0", timeout=LONG)
    qtbot.waitUntil(lambda: "runs parts 1.0.0" in compare.setup_label.text(), timeout=LONG)
    window.details.refresh()
    assert "1.0.0" in window.details.browser.toPlainText()
    window.close()
