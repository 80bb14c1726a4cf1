"""Issue 22, items 3 and 7: Cancel, Undo rollout and Quit during a rollout ask first (a plain-text box, Escape is
"no"), and a device that was installing when its rollout was cancelled is followed to the end it reports: good, as
Fleet versions says, never "failed at active".

Against real agents, as the user did: a rollout with Line 1 on probation; Quit refused, Cancel refused (nothing
changes), Cancel accepted (the rollout is cancelled at once, Line 2 is never sent anything, Line 1's row follows the
device to "good"); then Undo refused and accepted. A console closed while such a device still installs leaves the
row to the next console, which asks the device how it ended. (Per-device Roll back and Install release trust are
asked in test_push_truth.py; Quit accepted mid-rollout in test_resume.py.)"""

from __future__ import annotations

from edge_console.client.releases.rollout import RolloutStore
from edge_console.console.releases_ui.rollout_view import COLUMNS
from edge_console.console.releases_ui.workspace import ROLLOUTS, VERSIONS

from .boxes import answer_confirmation, confirmed
from .support import LONG, add_and_wait, make_site, open_window, releases_ready, running, trusting_agent

FACTORY = ("parts", "1.0.0")  # parts-v1.onnx: the factory model, version 1.0.0 of line parts


def _cell(view, row: int, column: str) -> str:
    return view.table.item(row, COLUMNS.index(column)).text()


def test_cancel_undo_and_quit_ask_first_and_the_installing_device_ends_good(qtbot, agent_factory, fleet_factory,
                                                                            tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agents = [trusting_agent(agent_factory, "Line 1", site, probation_s=12),
              trusting_agent(agent_factory, "Line 2", site)]
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    states = add_and_wait(fleet, agents, qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    center = window.releases
    dialog = tab.open_push(center.entries[0])
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled() and len(dialog.plan().devices) == 2, timeout=LONG)
    dialog.no_canary.setChecked(True)
    dialog.start_button.click()
    view = tab.rollouts
    rollout_id = view.shown.id
    rollout = lambda: center.rollouts.rollouts[rollout_id]  # noqa: E731
    qtbot.waitUntil(lambda: rollout().steps[0].record.get("state") == "active", timeout=LONG)

    # Quit while it runs: asked, refused, the console stays and the rollout goes on.
    said = confirmed(False, window.close)
    assert said.startswith("Quit while a rollout is running\nThe rollout of parts 2.0.0 is still running")
    assert "can resume it later" in said and said.endswith("Quit\nKeep the console open")
    assert window.isVisible() and center.rollouts.is_running(rollout_id)

    # Cancel: Escape keeps it running; yes cancels it at once.
    assert view.cancel_button.isVisible() and not view.undo_button.isVisible()
    said = confirmed(False, view.cancel_button.click)
    assert said.startswith("Cancel the rollout of parts 2.0.0\nCancel the rollout of parts 2.0.0?")
    assert "Nothing more is sent to Line 2." in said
    assert "Line 1 already received it: it finishes installing by itself, and its row follows it" in said
    assert rollout().status == "running" and center.rollouts.is_running(rollout_id)
    confirmed(True, view.cancel_button.click)
    qtbot.waitUntil(lambda: rollout().status == "cancelled", timeout=LONG)
    assert rollout().steps[0].phase == "pushing", "Line 1 is still installing: not failed"
    assert view.banner_label.text().startswith("Cancelled: nothing more is sent. Line 1 had received the release")
    assert not view.cancel_button.isVisible()

    # Line 1 ends as the device reports: good, in the rollout and in Fleet versions alike.
    qtbot.waitUntil(lambda: not center.rollouts.is_running(rollout_id), timeout=LONG)
    first, second = rollout().steps
    assert (first.phase, second.phase) == ("good", "waiting"), (first, second)
    assert view.bars[0].format() == "good" and _cell(view, 0, "Phase") == "good"
    assert "failed" not in " ".join(_cell(view, 0, c) for c in COLUMNS if c != "Progress")
    assert running(agents[0]) == ("parts", "2.0.0") and running(agents[1]) == FACTORY
    versions = window.open_releases(VERSIONS).versions
    qtbot.waitUntil(lambda: any(r[2] == "parts" and r[3] == "2.0.0 (good)" for r in versions.row_texts(states[0])),
                    timeout=LONG)
    assert view.banner_label.text().startswith("Cancelled (cancelled by the operator); 1 device(s) had finished.")

    # Undo rollout (the README's name, whatever state the rollout is in): asked, refused, then done.
    window.open_releases(ROLLOUTS)
    assert view.undo_button.isVisible() and view.undo_button.text() == "Undo rollout"
    said = confirmed(False, view.undo_button.click)
    assert "Undo the rollout of parts 2.0.0?" in said and "go back to the model they ran before: Line 1." in said
    assert said.endswith("Undo rollout\nKeep the release")
    assert running(agents[0]) == ("parts", "2.0.0") and not center.rollouts.is_running(rollout_id)
    confirmed(True, view.undo_button.click)
    qtbot.waitUntil(lambda: rollout().status == "rolled_back" and not center.rollouts.is_running(rollout_id),
                    timeout=LONG)
    assert [running(a) for a in agents] == [FACTORY, FACTORY]
    window.close()  # nothing runs now: no question
    assert not window.isVisible()


def test_a_cancelled_rollout_left_installing_is_settled_by_the_next_console(qtbot, agent_factory, fleet_factory,
                                                                            tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agent = trusting_agent(agent_factory, "Line 1", site, probation_s=12)
    database = tmp_path / "console.sqlite"
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(fleet, tmp_path, qtbot)
    add_and_wait(fleet, [agent], qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    center = window.releases
    dialog = tab.open_push(center.entries[0])
    qtbot.waitUntil(lambda: len(dialog.plan().devices) == 1, timeout=LONG)
    dialog.start_button.click()
    rollout_id = tab.rollouts.shown.id
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].steps[0].record.get("state") == "active",
                    timeout=LONG)
    confirmed(True, tab.rollouts.cancel_button.click)
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "cancelled", timeout=LONG)

    asked: list[str] = []
    timer = answer_confirmation(True, asked)
    window.close()  # a cancelled rollout is not running: quitting asks nothing
    timer.stop()
    assert asked == [] and not window.isVisible()
    fleet.close()
    store = RolloutStore(database)
    saved = store.get(rollout_id)
    store.close()
    assert saved.status == "cancelled" and saved.steps[0].phase == "pushing" and saved.steps[0].push["update_id"]

    # The next console asks the device how its install ended, once it knows where the device is.
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(fleet, tmp_path, qtbot)
    add_and_wait(fleet, [agent], qtbot)
    center = window.releases
    qtbot.waitUntil(lambda: rollout_id in center.rollouts.rollouts
                    and center.rollouts.rollouts[rollout_id].steps[0].phase == "good", timeout=LONG)
    assert running(agent) == ("parts", "2.0.0")
    assert center.rollouts.rollouts[rollout_id].status == "cancelled"
    qtbot.waitUntil(lambda: not center.rollouts.is_running(rollout_id), timeout=LONG)
    store = RolloutStore(database)
    assert store.get(rollout_id).steps[0].phase == "good", "saved as the device reported it"
    store.close()
    window.close()
