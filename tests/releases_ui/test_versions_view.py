"""Releases ▸ Fleet versions against real agents: each device's versions as it reports them, and the devices a
release cannot go to greyed with the reason before anything is sent (this console's role on one device; a
release built for another architecture), in the matrix and in the push dialog alike."""

from __future__ import annotations

import platform

from PySide6.QtCore import Qt

from edge_console.console.releases_ui.versions_view import COLUMNS, GREYED
from edge_console.console.releases_ui.workspace import VERSIONS

from .support import LONG, add_and_wait, make_site, open_window, releases_ready, running, trusting_agent

RELEASE = COLUMNS.index("Release")


def test_devices_a_release_cannot_go_to_are_greyed_with_the_reason(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    anywhere = site.release("2.0.0")
    for_pi = site.release("2.1.0", architectures=["armv7l"])
    operator = trusting_agent(agent_factory, "Line 1", site)
    viewer = trusting_agent(agent_factory, "Viewing only", site, role="viewer")
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    line1, watched = add_and_wait(fleet, [operator, viewer], qtbot)
    tab = releases_ready(window, site, [anywhere, for_pi], qtbot)
    versions = tab.versions
    window.open_releases(VERSIONS)
    qtbot.waitUntil(lambda: all(versions.row_texts(s) and versions.row_texts(s)[0][3] == "1.0.0 (good)"
                                for s in (line1, watched)), timeout=LONG)
    by_label = {e.label: e for e in window.releases.entries}

    versions.choose_release(by_label["parts 2.0.0"].id)
    [row] = versions.row_texts(line1)
    assert row[:6] == ["Line 1", "admin", "parts", "1.0.0 (good)", "—", "—"] and row[RELEASE] == "can take it"
    [row] = versions.row_texts(watched)
    assert row[1] == "viewer" and row[RELEASE] == "this console is not paired with it as an operator"
    assert _row_colours(versions, line1) == {"#166534"} | _plain(versions, line1), "only the verdict is coloured"
    assert _row_colours(versions, watched) == {GREYED.name()}, "every cell of the greyed row"
    assert _italic(versions, watched) and not _italic(versions, line1)
    assert "cannot take this release" in _tooltip(versions, watched) and "operator" in _tooltip(versions, watched)
    assert "1 device row(s) greyed" in versions.note.text()

    versions.choose_release(by_label["parts 2.1.0"].id)
    arch = platform.machine()
    for state in (line1, watched):
        [row] = versions.row_texts(state)
        assert _row_colours(versions, state) == {GREYED.name()}
    assert versions.row_texts(line1)[0][RELEASE] == f"built for armv7l; the device is {arch}"
    assert "2 device row(s) greyed" in versions.note.text()

    # The push dialog judges alike: greyed devices cannot be ticked, and the reason is on their row.
    dialog = tab.open_push(by_label["parts 2.0.0"])
    assert dialog.items[watched].flags() == Qt.ItemFlag.NoItemFlags
    assert dialog.items[watched].text(5) == "this console is not paired with it as an operator"
    assert dialog.items[watched].foreground(0).color() == GREYED
    assert dialog.items[line1].checkState(0) == Qt.CheckState.Checked
    plan = dialog.plan()
    assert plan.devices == [line1] and plan.skipped == {watched: "this console is not paired with it as an operator"}
    dialog.release_box.setCurrentIndex(dialog.release_box.findData(by_label["parts 2.1.0"].id))
    assert not dialog.start_button.isEnabled(), "no device can take a release built for another architecture"
    assert "at least one device" in dialog.summary.text()
    dialog.reject()
    assert running(operator) == running(viewer) == ("parts", "1.0.0"), "nothing was sent"
    window.close()


def _cells(view, state):
    return [view.table.item(r, c) for r, (s, _line) in enumerate(view.rows) if s is state
            for c in range(len(COLUMNS))]


def _row_colours(view, state) -> set[str]:
    return {item.foreground().color().name() for item in _cells(view, state)
            if item.foreground().style() != Qt.BrushStyle.NoBrush}


def _plain(view, state) -> set[str]:
    """The colours of cells drawn in the table's own text colour (an item without a brush of its own)."""
    return set()


def _italic(view, state) -> bool:
    return all(item.font().italic() for item in _cells(view, state))


def _tooltip(view, state) -> str:
    return _cells(view, state)[0].toolTip()
