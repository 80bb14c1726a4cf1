"""Say what is missing before Qt aborts: on Linux, Qt 6.5+ cannot open an X11 window without libxcb-cursor.

Qt's own failure is an abort with "no Qt platform plugin could be initialized", which tells a plant engineer
nothing. This check runs before QApplication and names the package to install.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

# The X11 libraries Qt's xcb plugin loads that a desktop does not always have (PySide6 ships the rest).
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}


def missing_display_libraries() -> list[str]:
    """Debian/Ubuntu package names Qt needs for an X11 window here; empty when fine or not applicable."""
    if not sys.platform.startswith("linux"):
        return []
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return []  # offscreen, wayland, eglfs...: not the xcb plugin
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return []  # Qt picks the Wayland plugin first
    if not os.environ.get("DISPLAY"):
        return []  # no display at all: Qt will say so itself
    return [pkg for lib, pkg in XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]


def display_problem() -> str | None:
    missing = missing_display_libraries()
    if not missing:
        return None
    return ("the console cannot open a window: Qt's X11 plugin needs " + ", ".join(missing) + ". Install with:\n"
            f"    sudo apt install {' '.join(missing)}\n"
            "(or run headless with QT_QPA_PLATFORM=offscreen, e.g. for --screenshot)")
