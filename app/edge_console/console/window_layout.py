"""The main window's size and dock layout: sane minimums, a first layout that fits the screen, and a saved layout
restored only when it still fits.

What went wrong before: a panel whose minimum size exceeded the space left by the docks squeezed the docks to
nothing (charts of zero height, "addre ss"), or grew the window past a 1366x768 screen, and the squeezed sizes
were saved and came back on the next start. Now every dock keeps a minimum that stays readable, the minimums
together fit the smallest screen the console supports (1366x768), and a saved layout is restored only when the
window it was saved from fits the screen the window opens on; otherwise the window starts with the first layout.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow

SETTINGS_VERSION = 3  # bump when docks change, so an old saved layout is not forced onto new docks (3: wider table)
DEFAULT_SIZE = QSize(1440, 900)
SMALLEST_SCREEN = QSize(1366, 768)  # the minimums below fit it, with a taskbar and a title bar
FRAME_ALLOWANCE = QSize(16, 48)  # a window manager's frame and title bar around the window
# (dock minimum size in its own direction, first-start size): readable, and together well inside SMALLEST_SCREEN.
DEVICES_DOCK_WIDTH = (300, 520)  # first start: name, status, health, last seen and trust all shown
DETAILS_DOCK_WIDTH = (260, 300)
CHARTS_DOCK_HEIGHT = (220, 300)


def apply_dock_minimums(devices: QDockWidget, details: QDockWidget, charts: QDockWidget) -> None:
    devices.widget().setMinimumWidth(DEVICES_DOCK_WIDTH[0])
    details.widget().setMinimumWidth(DETAILS_DOCK_WIDTH[0])
    charts.widget().setMinimumHeight(CHARTS_DOCK_HEIGHT[0])


def available_area(window: QMainWindow) -> QRect:
    screen = window.screen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, DEFAULT_SIZE.width(), DEFAULT_SIZE.height())


def fits(size: QSize, area: QRect) -> bool:
    return (size.width() + FRAME_ALLOWANCE.width() <= area.width()
            and size.height() + FRAME_ALLOWANCE.height() <= area.height())


def fitted_size(area: QRect) -> QSize:
    """The first-start size: DEFAULT_SIZE, or the whole available area where it is smaller."""
    return QSize(min(DEFAULT_SIZE.width(), area.width() - FRAME_ALLOWANCE.width()),
                 min(DEFAULT_SIZE.height(), area.height() - FRAME_ALLOWANCE.height()))


def first_layout(window: QMainWindow, devices: QDockWidget, details: QDockWidget, charts: QDockWidget) -> None:
    area = available_area(window)
    size = fitted_size(area)
    window.resize(size)
    window.move(area.left() + (area.width() - size.width()) // 2,
                area.top() + max(0, (area.height() - size.height() - FRAME_ALLOWANCE.height()) // 2))
    # The previews get most of the room; the table is wide enough for its key columns (name to last seen).
    window.resizeDocks([devices, details], [DEVICES_DOCK_WIDTH[1], DETAILS_DOCK_WIDTH[1]], Qt.Orientation.Horizontal)
    window.resizeDocks([charts], [CHARTS_DOCK_HEIGHT[1]], Qt.Orientation.Vertical)


def restore_layout(window: QMainWindow, settings: QSettings) -> bool:
    """Restore the saved geometry and dock state if there is one for these docks and its window fits the screen
    the window is on; False (nothing restored) otherwise."""
    if settings.value("layout_version", 0, int) != SETTINGS_VERSION:
        return False
    saved_size = settings.value("window_size")
    geometry, state = settings.value("geometry"), settings.value("window_state")
    if not isinstance(saved_size, QSize) or not isinstance(geometry, QByteArray):
        return False
    if not fits(saved_size, available_area(window)):
        return False  # saved on a larger screen: its dock sizes would squeeze here
    window.restoreGeometry(geometry)
    if isinstance(state, QByteArray):
        window.restoreState(state, SETTINGS_VERSION)
    return True


def save_layout(window: QMainWindow, settings: QSettings) -> None:
    settings.setValue("layout_version", SETTINGS_VERSION)
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("window_state", window.saveState(SETTINGS_VERSION))
    settings.setValue("window_size", window.size())
