"""Say what is missing before Qt aborts: a display at all, or on Linux the X11 libraries Qt 6.5+ needs.

Qt's own failure is an abort with "no Qt platform plugin could be initialized … Reinstalling the application may
fix this problem", which tells a plant engineer nothing (and is wrong: reinstalling fixes nothing). This check
runs before QApplication and says what to do: install a named package, or start from a desktop session, or run
headless.

`emulate_screen` is for --screenshot on a machine without a display: Qt's offscreen platform, told the size of
the screen the window is laid out for.
"""

from __future__ import annotations

import atexit
import ctypes.util
import json
import os
import sys
import tempfile

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
        return []  # no display at all: `no_display` says so
    return [pkg for lib, pkg in XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]


def no_display() -> bool:
    """On Linux (not macOS or Windows, which always have one), no display to open a window on and no platform
    chosen that needs none."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return False  # offscreen, eglfs, linuxfb, vnc...: they need no desktop session
    return not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")


def display_problem() -> str | None:
    if no_display():
        return ("the console needs a display, and this session has none (neither DISPLAY nor WAYLAND_DISPLAY is "
                "set). Start it from the desktop, or over SSH with X forwarding (ssh -X). To run without one:\n"
                "    edge-console --demo --screenshot console.png     (QT_QPA_PLATFORM=offscreen is set for you)\n"
                "    edge-console compare --device HOST:PORT          (the comparison, headless)")
    missing = missing_display_libraries()
    if not missing:
        return None
    return ("the console cannot open a window: Qt's X11 plugin needs " + ", ".join(missing) + ". Install with:\n"
            f"    sudo apt install {' '.join(missing)}\n"
            "(or run headless with QT_QPA_PLATFORM=offscreen, e.g. for --screenshot)")


def emulate_screen(width: int, height: int) -> None:
    """Without a display, render offscreen on a screen of `width` x `height` (Qt's offscreen platform reads its
    screens from a JSON file); with a display, change nothing."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and platform != "offscreen":
        return  # a configured platform (or offscreen with its own configuration) stays as it is
    if not platform and not no_display():
        return
    screen = {"name": f"screenshot-{width}x{height}", "x": 0, "y": 0, "width": width, "height": height,
              "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}
    with tempfile.NamedTemporaryFile("w", prefix="edge-console-screen-", suffix=".json", delete=False) as f:
        json.dump({"screens": [screen]}, f)
    atexit.register(os.unlink, f.name)  # Qt reads it once, when the application starts
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={f.name}"
