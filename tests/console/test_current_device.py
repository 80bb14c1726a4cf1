"""Issue 22 (6): with one device's preview in front and another chosen in the table, Pair…, Forget and Ctrl+K acted
on the tab's device ("Pair with Press line 1" while Packing line 2 was selected). One rule now: the device last
chosen (table, tile, or a tab brought to the front), named in the window's title and in every dialog that acts on
it. The real window, with two real agents."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from edge_console.console.compare.panel import ComparePanel
from edge_console.console.main_window import MainWindow
from edge_console.console.widgets.pair_dialog import PairDialog

LONG = 60_000


def _action(window: MainWindow, text: str):
    return next(a for menu in window.menuBar().actions() for a in menu.menu().actions()
                if a.text().replace("&", "") == text)


def test_actions_on_the_device_follow_the_one_chosen_last_and_name_it(qtbot, fleet_factory, shared_agents, tmp_path):
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    first, second = (fleet.add_manual(agent.address) for agent in shared_agents)
    qtbot.waitUntil(lambda: first.connected and second.connected, timeout=LONG)

    window.open_preview(first)  # the preview of the first device in front...
    assert window.windowTitle() == f"Edge Console — {first.name}"
    window.table.select(second)  # ...and the second chosen in the table
    qtbot.waitUntil(lambda: window.current is second, timeout=LONG)
    assert window.tabs.currentWidget().state is first  # the tab stays where it was
    assert window.windowTitle() == f"Edge Console — {second.name}"

    _action(window, "Pair with device…").trigger()
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, PairDialog) and w.isVisible())
    assert dialog.state is second and dialog.windowTitle() == f"Pair with {second.name}"
    dialog.reject()

    _action(window, "Compare with a local model").trigger()  # Ctrl+K
    compare = window.tabs.currentWidget()
    assert isinstance(compare, ComparePanel) and compare.state is second

    window.tabs.setCurrentWidget(window.previews[first])  # bringing a tab to the front chooses its device
    assert window.current is first and window.windowTitle() == f"Edge Console — {first.name}"
    window.close()
