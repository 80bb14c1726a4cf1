"""Releases ▸ Push and Rollouts against real agents: a push to two devices with each device's progress shown, the
whole rollout undone with one button (after its confirmation), and a canary that fails its golden set halting the
rollout before the rest. Every outcome is read back from the devices themselves (GET /v1/models), not only from
the views. Cancelling a rollout is test_confirmations.py's."""

from __future__ import annotations

from PySide6.QtCore import Qt

from edge_console.console.releases_ui.rollout_view import COLUMNS
from edge_console.console.releases_ui.versions_view import COLUMNS as VERSION_COLUMNS
from edge_console.console.releases_ui.workspace import ROLLOUTS, VERSIONS

from .boxes import confirmed
from .support import LONG, add_and_wait, make_site, open_window, releases_ready, running, trusting_agent

FACTORY = ("parts", "1.0.0")  # parts-v1.onnx: the factory model, version 1.0.0 of line parts


def _cell(view, row: int, column: str) -> str:
    return view.table.item(row, COLUMNS.index(column)).text()


def test_push_to_two_devices_with_progress_then_undo_the_rollout(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agents = [trusting_agent(agent_factory, f"Line {i}", site) for i in (1, 2)]
    before = [running(a) for a in agents]
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    states = add_and_wait(fleet, agents, qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    center = window.releases

    # Push… from the Library: both devices can take it; one canary (one per hardware kind), then a batch of 1.
    tab.library.push_button.click()
    dialog = tab.push_dialog
    assert dialog is not None and dialog.isVisible()
    # "not known yet" until the devices' versions and release trust are in, then "yes", ticked.
    qtbot.waitUntil(lambda: all(dialog.items[s].text(5) == "yes" for s in states), timeout=LONG)
    assert [dialog.items[s].checkState(0) for s in states] == [Qt.CheckState.Checked] * 2
    assert "1 canary device(s) first (Line 1)" in dialog.summary.text()
    seen: dict[str, set[str]] = {"Line 1": set(), "Line 2": set()}
    clipped: set[str] = set()
    view = tab.rollouts

    def record(_rollout_id: str) -> None:  # what each device's progress bar said, change by change
        for r, bar in enumerate(view.bars):
            seen[view.table.item(r, 0).text()].add(bar.format())
            if bar.fontMetrics().horizontalAdvance(bar.format()) > bar.width() - 8:  # issue 22: "uplo|ad 58 %"
                clipped.add(bar.format())

    center.rollouts.changed.connect(record)
    dialog.start_button.click()
    assert tab.currentIndex() == ROLLOUTS
    rollout_id = view.shown.id
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "done"
                    and not center.rollouts.is_running(rollout_id), timeout=LONG)

    rollout = center.rollouts.rollouts[rollout_id]
    assert [(s.name, s.canary, s.phase) for s in rollout.steps] == [("Line 1", True, "good"), ("Line 2", False, "good")]
    assert not clipped, clipped
    for name, formats in seen.items():
        assert any(f.startswith("upload ") for f in formats), (name, formats)  # bytes, then the device's steps
        assert {"probation", "good"} <= formats, (name, formats)
    assert [_cell(view, r, "Stage") for r in range(2)] == ["canary", "batch 1"]
    for r in range(2):
        assert _cell(view, r, "Check").startswith("passed · F1 "), "the golden set's figures on that device"
        assert view.bars[r].value() == 100
    assert view.banner_label.text().startswith("Done: 2 of 2")
    assert [running(a) for a in agents] == [("parts", "2.0.0")] * 2, "the devices themselves run the release"

    # Fleet versions shows it too, each device's row from its own answer.
    window.open_releases(VERSIONS)
    versions = tab.versions
    qtbot.waitUntil(lambda: all(versions.row_texts(s) and versions.row_texts(s)[0][3] == "2.0.0 (good)"
                                for s in states), timeout=LONG)
    rows = {row[2]: row for row in versions.row_texts(states[0])}  # one row per model line the device has
    assert rows["parts"][3] == "2.0.0 (good)" and rows["parts"][8].startswith("passed 2.0.0 · F1 ")
    assert rows["parts"][VERSION_COLUMNS.index("Release")] == "runs it"
    assert rows["parts"][4].startswith(before[0][1]), "the previous model (the factory one), ready to return to"

    # Undo the whole rollout: every device it changed goes back to what it ran before.
    window.open_releases(ROLLOUTS)
    assert view.undo_button.isVisible() and view.undo_button.text() == "Undo rollout"
    said = confirmed(True, view.undo_button.click)
    assert "Undo the rollout of parts 2.0.0?" in said and "Line 1, Line 2" in said
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status == "rolled_back"
                    and not center.rollouts.is_running(rollout_id), timeout=LONG)
    assert [running(a) for a in agents] == before
    assert [s.phase for s in center.rollouts.rollouts[rollout_id].steps] == ["rolled_back"] * 2
    assert view.banner_label.text().startswith("Rolled back")
    assert not view.undo_button.isVisible()
    window.close()


def test_a_canary_failing_its_golden_set_halts_the_rollout(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    weak = site.weak_release("3.0.0")
    agents = [trusting_agent(agent_factory, f"Line {i}", site) for i in (1, 2, 3)]
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    states = add_and_wait(fleet, agents, qtbot)
    tab = releases_ready(window, site, [weak], qtbot)
    center = window.releases
    assert center.entries[0].verified, "signed and intact: only the device's own check can tell it is weak"

    dialog = tab.open_push(center.entries[0])
    qtbot.waitUntil(lambda: all(dialog.items[s].text(5) == "yes" for s in states), timeout=LONG)
    dialog.set_canaries([states[1]])  # Line 2 goes first, chosen by hand
    dialog.batch_box.setValue(2)
    assert "1 canary device(s) first (Line 2)" in dialog.summary.text()
    dialog.start_button.click()
    view = tab.rollouts
    rollout_id = view.shown.id
    qtbot.waitUntil(lambda: center.rollouts.rollouts[rollout_id].status != "running"
                    and not center.rollouts.is_running(rollout_id), timeout=LONG)

    rollout = center.rollouts.rollouts[rollout_id]
    assert rollout.status == "halted"
    phases = {s.name: s.phase for s in rollout.steps}
    assert phases == {"Line 2": "failed", "Line 1": "waiting", "Line 3": "waiting"}, "the rest were never sent it"
    canary_row = [view.table.item(r, 0).text() for r in range(view.table.rowCount())].index("Line 2")
    assert "golden set" in _cell(view, canary_row, "Detail")
    assert _cell(view, canary_row, "Check").startswith("FAILED · F1 ")
    assert view.table.item(canary_row, 0).foreground().color().name() == "#b91c1c"
    assert view.banner_label.text().startswith("HALTED: Line 2") and "Nothing was installed" in view.banner_label.text()
    assert "#fdecea" in view.banner.styleSheet(), "halted is said in red"
    assert not view.undo_button.isVisible(), "nothing to undo: the canary refused it before switching"
    assert [running(a) for a in agents] == [FACTORY] * 3
    window.close()
