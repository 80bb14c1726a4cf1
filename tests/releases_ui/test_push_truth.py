"""Issue 22, items 1, 4 and 11: what the push dialog and Fleet versions say before sending is what the devices say
after, and a push follows its device, not an address.

Against real agents: a device that was rolled back from the release (its highest version is still the release's),
one that trusts no release root, and one that went offline are greyed in the push dialog and in Fleet versions
with the device's own reasons, never "yes"; an admin console installs its release root on the bare device (after a
confirmation), which can then take the release. A device killed mid-push and restarted on another port is said to
be offline at once, found at its new address, and its push finishes; one that never comes back fails in words,
never with a Python repr."""

from __future__ import annotations

import re
import socket
import time

from PySide6.QtCore import Qt

from edge_console.client.releases import push as push_module
from edge_console.console.releases_ui.push_dialog import PUSH, WHY
from edge_console.console.releases_ui.versions_view import COLUMNS
from edge_console.console.releases_ui.workspace import VERSIONS
from edge_console.core.paths import demo_model

from .boxes import confirmed
from .support import LONG, add_and_wait, device_api, make_site, open_window, releases_ready, running, trusting_agent

FACTORY = ("parts", "1.0.0")  # parts-v1.onnx: the factory model, version 1.0.0 of line parts
RELEASE = COLUMNS.index("Release")
TRUST = COLUMNS.index("Release trust")
REPR = re.compile(r"0x[0-9a-f]{4,}|object at|SSLContext|<[a-zA-Z_.]+ ")


def _push_to(tab, entry, states, qtbot, center) -> str:
    """Push `entry` to `states` only, from the push dialog as a user does; the rollout's id."""
    dialog = tab.open_push(entry)
    qtbot.waitUntil(lambda: all(dialog.items[s].text(WHY) == "yes" for s in states), timeout=LONG)
    dialog.set_pushed(states)
    dialog.no_canary.setChecked(True)
    dialog.start_button.click()
    return tab.rollouts.shown.id


def test_the_push_dialog_and_fleet_versions_say_what_each_device_would_say(qtbot, agent_factory, fleet_factory,
                                                                           tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    line1 = trusting_agent(agent_factory, "Line 1", site)
    bare = agent_factory("Spare", model=demo_model("parts-v1"), advertise=False).start()  # no release root
    away = trusting_agent(agent_factory, "Away", site)
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    states = add_and_wait(fleet, [line1, bare, away], qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    center = window.releases
    entry = center.entries[0]

    # Before the devices' /v1/models and /v1/release-trust are in, nobody is "yes".
    dialog = tab.open_push(entry)
    assert all(dialog.items[s].text(WHY).startswith("not known yet") for s in states), \
        [dialog.items[s].text(WHY) for s in states]
    assert all(dialog.items[s].flags() == Qt.ItemFlag.NoItemFlags for s in states)
    assert not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.items[states[0]].text(WHY) == "yes", timeout=LONG)
    qtbot.waitUntil(lambda: dialog.items[states[1]].text(WHY).startswith("trusts no release root"), timeout=LONG)
    dialog.reject()

    # Line 1 takes the release, then is rolled back from Fleet versions (asked first: a refusal changes nothing).
    rollout_id = _push_to(tab, entry, [states[0]], qtbot, center)
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "done", timeout=LONG)
    assert running(line1) == ("parts", "2.0.0")
    versions = window.open_releases(VERSIONS).versions
    qtbot.waitUntil(lambda: any(r[2] == "parts" and r[3] == "2.0.0 (good)" for r in versions.row_texts(states[0])),
                    timeout=LONG)
    versions.select(states[0], "parts")
    versions.rollback_menu.aboutToShow.emit()
    back = {a.text(): a for a in versions.rollback_menu.actions()}["To the previous model: parts 1.0.0"]
    said = confirmed(False, back.trigger)
    assert said.startswith("Roll back Line 1\nRoll Line 1 back to parts 1.0.0?") and "It runs parts 2.0.0" in said
    assert running(line1) == ("parts", "2.0.0"), "Escape changed nothing"
    confirmed(True, back.trigger)
    qtbot.waitUntil(lambda: running(line1) == FACTORY, timeout=LONG)

    # Away goes offline.
    away.stop()
    qtbot.waitUntil(lambda: not states[2].connected, timeout=LONG)
    seen_at = time.strftime("%H:%M", time.localtime(states[2].last_seen))

    # Fleet versions and the push dialog now say what each device would say.
    refused = ("not newer than parts 2.0.0, the highest it has had: a device takes only a newer version; "
               "Roll back ▾ can return it to 2.0.0, which it keeps")
    qtbot.waitUntil(lambda: all(r[RELEASE] == refused for r in versions.row_texts(states[0])), timeout=LONG)
    assert all(r[RELEASE].startswith("trusts no release root") and r[TRUST] == "none"
               for r in versions.row_texts(states[1]))
    qtbot.waitUntil(lambda: all(r[RELEASE] == f"offline since {seen_at}" for r in versions.row_texts(states[2])),
                    timeout=LONG)  # the page redraws shortly after a device's change
    assert versions.row_texts(states[0])[0][TRUST] == "this console's (root v1)"
    dialog = tab.open_push(entry)
    assert [dialog.items[s].text(WHY) for s in states] == [
        refused, versions.row_texts(states[1])[0][RELEASE], f"offline since {seen_at}"]
    assert all(dialog.items[s].flags() == Qt.ItemFlag.NoItemFlags for s in states), "none can be ticked"
    assert all(dialog.items[s].checkState(PUSH) == Qt.CheckState.Unchecked for s in states)
    assert not dialog.start_button.isEnabled()
    plan = dialog.plan()
    assert plan.devices == [] and set(plan.skipped) == set(states)

    # An admin console gives the bare device its release root: asked first, naming the device and the root.
    versions.select(states[1])
    assert versions.trust_button.isEnabled()
    said = confirmed(False, versions.trust_button.click)
    assert "Have Spare trust this console's release authority: root version 1, keys " in said
    assert "It trusts no release root now." in said
    assert device_api(bare, "/v1/release-trust") == {"installed": False}, "Escape installed nothing"
    confirmed(True, versions.trust_button.click)
    qtbot.waitUntil(lambda: device_api(bare, "/v1/release-trust")["installed"], timeout=LONG)
    qtbot.waitUntil(lambda: dialog.items[states[1]].text(WHY) == "yes", timeout=LONG)
    assert versions.row_texts(states[1])[0][TRUST] == "this console's (root v1)"
    assert versions.row_texts(states[1])[0][RELEASE] == "can take it"
    assert dialog.items[states[1]].checkState(PUSH) == Qt.CheckState.Checked
    versions.select(states[0])
    assert not versions.trust_button.isEnabled(), "Line 1 already trusts it"
    dialog.start_button.click()  # the bare device takes the release now, as the dialog said it would
    rollout_id = tab.rollouts.shown.id
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "done", timeout=LONG)
    assert running(bare) == ("parts", "2.0.0") and running(line1) == FACTORY
    window.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill(agent) -> None:
    agent.kill()  # as a power cut would: no goodbye


def _watch_details(center) -> list[tuple[str, str]]:
    """Every (detail, progress word) a rollout's rows showed, change by change."""
    seen: list[tuple[str, str]] = []

    def record(_rollout_id: str) -> None:
        view = center.rollouts
        for rollout in view.rollouts.values():
            seen.extend((s.detail, s.phase) for s in rollout.steps)
            seen.append((rollout.reason, rollout.status))
    center.rollouts.changed.connect(record)
    return seen


def test_a_device_killed_mid_push_is_said_offline_and_followed_to_its_new_address(qtbot, agent_factory,
                                                                                  fleet_factory, tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agent = trusting_agent(agent_factory, "Line 1", site, probation_s=15)
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    [state] = add_and_wait(fleet, [agent], qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    center = window.releases
    seen = _watch_details(center)
    rollout_id = _push_to(tab, center.entries[0], [state], qtbot, center)
    step = lambda: center.rollouts.rollouts[rollout_id].steps[0]  # noqa: E731
    qtbot.waitUntil(lambda: step().record.get("state") == "active", timeout=LONG)

    old = agent.address
    _kill(agent)
    qtbot.waitUntil(lambda: step().detail.startswith("offline since "), timeout=LONG)  # said at once
    hint = step().detail
    assert re.match(r"offline since \d\d:\d\d:\d\d, waiting for it \(\d+ s left\) · ", hint), hint
    assert f"{old.host}:{old.port}: " in hint, hint
    qtbot.waitUntil(lambda: "connection refused" in step().detail, timeout=LONG)  # tried again, at the same place
    assert f"{old.host}:{old.port}: unreachable: connection refused" in step().detail, step().detail
    bar = tab.rollouts.bars[0].format()
    assert bar == "probation · offline", bar

    agent.start(port=_free_port())  # the same device (same identity), back on another port
    assert agent.address != old
    fleet.add_manual(agent.address)  # as a user does for a device that moved (or an announcement would)
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "done", timeout=LONG)
    assert step().phase == "good" and not step().offline_since
    assert state.address == agent.address, "the console follows the device to its new address"
    assert running(agent) == ("parts", "2.0.0")
    assert not [text for text, _ in seen if REPR.search(text)]
    window.close()


def test_a_device_that_never_comes_back_fails_its_push_in_words(qtbot, agent_factory, fleet_factory, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(push_module, "RETRY_FOR_S", 4.0)  # the product's deadline, shortened for the test
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agent = trusting_agent(agent_factory, "Line 1", site, probation_s=30)
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    [state] = add_and_wait(fleet, [agent], qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    center = window.releases
    seen = _watch_details(center)
    rollout_id = _push_to(tab, center.entries[0], [state], qtbot, center)
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].steps[0].record.get("state") == "active",
                    timeout=LONG)
    old = agent.address
    _kill(agent)
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "halted", timeout=LONG)

    failed = center.rollouts.rollouts[rollout_id].steps[0]
    assert failed.phase == "failed"
    assert failed.detail.startswith("the device stayed unreachable for 4 s (")
    assert f"{old.host}:{old.port}: unreachable: connection refused" in failed.detail, failed.detail
    shown = [tab.rollouts.banner_label.text(), tab.rollouts.table.item(0, 4).text()]
    assert all("unreachable" in text for text in shown), shown
    assert not [text for text in shown + [t for t, _ in seen] if REPR.search(text)]
    window.close()
