"""Issue 22 (10): clipped text. The Pair dialog's wrong-code error and its instructions, the add-device help, the
Trust column ("Tr") and Compare's precision/recall/F1 (behind the Details dock at 1440x900) were cut off. Layouts
now grow with their text, and a cell too narrow for its text has it whole in its tooltip. The real window at its
first layout (1440x900), real agents."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QWidget

from edge_console.console.main_window import MainWindow
from edge_console.console.widgets.add_device_dialog import AddDeviceDialog
from edge_console.console.widgets.device_table import HEALTH_COLUMN, TRUST_COLUMN
from edge_console.console.widgets.text_fit import clipped_labels

from .window_checks import desktop, place_on

LONG = 60_000


def test_dialogs_grow_with_their_text_and_cells_say_the_rest_in_tooltips(qtbot, fleet_factory, agent_factory,
                                                                          shared_agents, tmp_path):
    unpaired = agent_factory("Packing line 2", advertise=False, enrol=False).start()
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    place_on(window, desktop())
    qtbot.addWidget(window)
    window.show()
    paired = fleet.add_manual(shared_agents[0].address)
    stranger = fleet.add_manual(unpaired.address)
    qtbot.waitUntil(lambda: paired.connected and stranger.status == "not paired", timeout=LONG)

    dialog = window.pair_with(stranger)
    assert not clipped_labels(dialog)
    dialog.code.setText("1111-2222")  # a wrong code: the longest message the dialog shows
    dialog.start()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Not paired"), timeout=LONG)
    assert "someone between" in dialog.status.text() and not clipped_labels(dialog), clipped_labels(dialog)
    assert dialog.height() < QApplication.primaryScreen().availableGeometry().height()
    dialog.reject()

    add = AddDeviceDialog(window)
    add.show()
    assert not clipped_labels(add), clipped_labels(add)
    add.edit.setText("no port here")
    add._accept_if_valid()
    assert add.error.text() and not clipped_labels(add), clipped_labels(add)
    add.reject()

    view = window.table.view
    row = window.table.proxy.mapFromSource(window.table.model.index(window.table.model.row_of(stranger), 0)).row()
    assert view.columnViewportPosition(TRUST_COLUMN) + view.columnWidth(TRUST_COLUMN) <= view.viewport().width()
    health = window.table.model.index(window.table.model.row_of(stranger), HEALTH_COLUMN)
    assert health.data(Qt.ItemDataRole.ToolTipRole).count(health.data()) >= 1  # the whole text is in its tooltip
    assert view.visualRect(view.model().index(row, HEALTH_COLUMN)).height() < 2 * view.fontMetrics().height() + 8

    window.set_current(paired)
    compare = window.open_compare(paired)
    qtbot.waitUntil(lambda: compare.run_count > 0, timeout=LONG)
    compare.refresh_stats()
    assert window.details_dock.isVisible() and window.devices_dock.isVisible()
    content = compare.scroll.widget()
    widest = sorted(((w.minimumSizeHint().width(), type(w).__name__, getattr(w, "text", lambda: "")()[:40])
                     for w in content.findChildren(QWidget) if w.isVisible()), reverse=True)[:5]
    assert compare.scroll.horizontalScrollBar().maximum() == 0, (  # nothing off to the right, behind the Details dock
        compare.scroll.viewport().width(), content.minimumSizeHint().width(), widest)
    stats = compare.agreement
    right_edge = stats.mapTo(compare.scroll.widget(), stats.rect().topRight()).x()
    assert right_edge <= compare.scroll.viewport().width()
    window.close()
