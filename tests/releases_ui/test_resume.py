"""A rollout outlives the console that started it: the console is closed mid-rollout (its window, release views,
fleet and network loop all gone), a new console opened on the same database offers to resume it, and the rollout
picks up where it stopped: the device that was installing is followed, not sent the release again, and the rest
get it. Then one device is rolled back on its own from Fleet versions."""

from __future__ import annotations

from edge_console.client.releases.rollout import RolloutStore
from edge_console.console.releases_ui.workspace import VERSIONS
from edge_console.core.audit.log import AuditLog

from .boxes import confirmed
from .support import LONG, add_and_wait, device_api, make_site, open_window, releases_ready, running, trusting_agent

FACTORY = ("parts", "1.0.0")  # parts-v1.onnx: the factory model, version 1.0.0 of line parts


def test_a_rollout_cut_by_closing_the_console_is_resumed_by_the_next(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    # Line 1's probation is long enough to close the console while it runs; Line 2 waits its turn.
    agents = [trusting_agent(agent_factory, "Line 1", site, probation_s=4),
              trusting_agent(agent_factory, "Line 2", site)]
    database = tmp_path / "console.sqlite"
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(fleet, tmp_path, qtbot)
    add_and_wait(fleet, agents, qtbot)
    center = releases_ready(window, site, [release], qtbot).center
    dialog = window.release_views.tab.open_push(center.entries[0])
    qtbot.waitUntil(lambda: len(dialog.plan().devices) == 2, timeout=LONG)  # both known able to take it
    dialog.no_canary.setChecked(True)  # one at a time, in the table's order
    dialog.start_button.click()
    rollout_id = window.release_views.tab.rollouts.shown.id
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].steps[0].record.get("state") == "active",
                    timeout=LONG)

    said = confirmed(True, window.close)  # the console goes away mid-rollout (asked first)...
    assert "can resume it later" in said
    fleet.close()
    store = RolloutStore(database)
    saved = store.get(rollout_id)
    store.close()
    assert saved is not None and saved.status == "running", "left resumable, not cancelled"
    assert saved.steps[0].phase == "pushing" and saved.steps[0].push["update_id"]
    assert saved.steps[1].phase == "waiting"
    assert running(agents[1]) == FACTORY

    # ...and the next one, on the same database, offers to resume it.
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(fleet, tmp_path, qtbot)
    states = add_and_wait(fleet, agents, qtbot)
    qtbot.waitUntil(lambda: "Resume rollout of parts 2.0.0?" in window.notice.text, timeout=LONG)
    assert "0 of 2 device(s) good so far" in window.notice.text
    assert window.notice.action_button.text() == "Resume rollout"
    window.notice.action_button.click()
    center = window.releases
    view = window.release_views.tab.rollouts
    assert view.shown is not None and view.shown.id == rollout_id, "the resumed rollout is shown"
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "done"
                    and not center.rollouts.is_running(rollout_id), timeout=LONG)

    assert [s.phase for s in center.rollouts.rollouts[rollout_id].steps] == ["good", "good"]
    assert [running(a) for a in agents] == [("parts", "2.0.0")] * 2
    installs = [u for u in device_api(agents[0], "/v1/models")["updates"] if u.get("version") == "2.0.0"]
    assert len(installs) == 1, "Line 1's update was followed to its end, not sent again"
    console_log = AuditLog(tmp_path / "audit.log")
    qtbot.waitUntil(lambda: {"rollout resumed", "rollout done"} <= {e["event"] for e in console_log.entries()},
                    timeout=LONG)

    # One device back to its previous model, from Fleet versions' Roll back menu.
    versions = window.open_releases(VERSIONS).versions
    qtbot.waitUntil(lambda: any(row[2] == "parts" and row[3] == "2.0.0 (good)"
                                for row in versions.row_texts(states[1])), timeout=LONG)
    versions.select(states[1], "parts")
    versions.rollback_menu.aboutToShow.emit()
    actions = {a.text(): a for a in versions.rollback_menu.actions()}
    assert "To the previous model: parts 1.0.0" in actions, list(actions)
    said = confirmed(True, actions["To the previous model: parts 1.0.0"].trigger)
    assert "Roll Line 2 back to parts 1.0.0?" in said
    qtbot.waitUntil(lambda: any(row[2] == "parts" and row[3] == "1.0.0 (good)"
                                for row in versions.row_texts(states[1])), timeout=LONG)
    assert running(agents[1]) == FACTORY and running(agents[0]) == ("parts", "2.0.0")
    qtbot.waitUntil(lambda: any(e["event"] == "rollback" for e in console_log.entries()), timeout=LONG)
    window.close()
