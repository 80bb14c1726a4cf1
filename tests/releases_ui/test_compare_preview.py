"""Any imported release can be previewed on a device's live frames: its model, run on the laptop, against what the
device runs (Compare). A Compare panel opened before the import learns the release too."""

from __future__ import annotations

from edge_console.console.compare.panel_layout import RELEASE_PREFIX

from .support import LONG, add_and_wait, make_site, open_window, releases_ready, running, trusting_agent


def test_preview_an_imported_release_on_a_devices_frames(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    agent = trusting_agent(agent_factory, "Line 1", site)  # runs parts-v1
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    [state] = add_and_wait(fleet, [agent], qtbot)
    compare = window.open_compare(state)
    qtbot.waitUntil(lambda: compare.opened is not None, timeout=LONG)  # first with the device's own model

    tab = releases_ready(window, site, [release], qtbot)
    entry = window.releases.entries[0]
    path = str(entry.model_path)
    qtbot.waitUntil(lambda: compare.model_box.findData(path) >= 0, timeout=LONG)
    assert compare.model_box.itemText(compare.model_box.findData(path)).startswith(f"{RELEASE_PREFIX}parts 2.0.0")

    window.set_current(state)
    tab.library.preview_button.click()
    assert window.tabs.currentWidget() is compare
    qtbot.waitUntil(lambda: compare.opened is not None and str(compare.opened.model_path) == path, timeout=LONG)
    assert compare.opened.model["sha256"] == entry.summary["model"]["sha256"], "the model inside the release"
    assert compare.model_box.currentText().startswith(f"{RELEASE_PREFIX}parts 2.0.0")
    assert "previewing a candidate" in compare.setup_label.text()
    run = compare.run
    qtbot.waitUntil(lambda: compare.latest is not None and compare.run == run and compare.run_count > 0,
                    timeout=LONG)
    assert compare.latest.local, "the release's model found the parts in the device's frame"
    assert running(agent) == ("parts", "1.0.0"), "a preview sends nothing to the device"
    window.close()


def test_preview_needs_a_device_and_says_so(qtbot, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    release = site.release("2.0.0")
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    tab = releases_ready(window, site, [release], qtbot)
    tab.library.preview_button.click()
    assert "Select a device" in window.statusBar().currentMessage()
    assert not window.compares
    window.close()
