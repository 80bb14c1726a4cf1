"""`edge-console`: the operator console's entry point.

    edge-console                          browse all interfaces, database in the user's data directory
    edge-console --demo                   a simulated fleet of 3 devices on 127.0.0.1, shown in the grid
    edge-console --demo --screenshot console.png --after 8     render the window to a PNG and exit 0
    edge-console --add 192.168.10.21:8470 --browse-interface 192.168.10.5
    edge-console compare --device HOST:PORT [--model PATH] [--frames N] [--json] [--save-frames DIR]
                                          device vs local model on the device's own frames, headless (no Qt
                                          loaded); `edge-console compare --help` lists its options

`main` is a sequence of small steps: parse, check the display, build the application, the fleet (and the demo),
the window, then run the event loop; each step is a function below, in that order.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_console.core.paths import resources_dir

from .net.addresses import EXAMPLE, DeviceAddress, parse_host_port

if TYPE_CHECKING:  # Qt is imported only once the arguments are good: `--help` and mistakes stay instant
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from .demo import SimulatedFleet
    from .fleet import Fleet
    from .main_window import MainWindow

SCREENSHOT_READY_GRACE_S = 30.0  # with --demo, how much longer than --after to wait for every device's picture
SCREENSHOT_POLL_MS = 250
LAYOUT_TEXT_KEY = "edge-console:layout"  # a PNG text chunk: where the screenshot's tiles are and what they show


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-console", description="Operator console for edge-AI devices",
        epilog="Headless comparison: edge-console compare --device HOST:PORT [--model PATH] [--frames N] [--json] "
               "[--save-frames DIR] (see edge-console compare --help).")
    parser.add_argument("--demo", action="store_true",
                        help="start a simulated fleet of 3 devices on 127.0.0.1 and show it (stopped on exit)")
    parser.add_argument("--demo-count", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--screenshot", type=Path, metavar="PATH", help="save the main window as PNG, then exit")
    parser.add_argument("--after", type=float, default=8.0, metavar="SECONDS",
                        help="how long to run before --screenshot (default 8; with --demo, up to "
                             f"{SCREENSHOT_READY_GRACE_S:g} s longer until every device shows its picture)")
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help="console database (default: the user's data directory; --demo uses a temporary one)")
    parser.add_argument("--browse-interface", action="append", metavar="ADDR", default=[],
                        help="IPv4 address of an interface to browse with mDNS; repeatable (default: all; "
                             "--demo forces 127.0.0.1)")
    parser.add_argument("--no-discovery", action="store_true", help="do not browse mDNS; use --add and the database")
    parser.add_argument("--add", action="append", metavar="HOST:PORT", default=[],
                        help=f"add a device by address, e.g. {EXAMPLE}; repeatable")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


@dataclass
class Launch:
    """What the command line asked for, checked."""

    args: argparse.Namespace
    addresses: list[DeviceAddress]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        return run_headless_compare(argv[1:])
    launch = parse_command_line(argv)
    configure_logging(launch.args.verbose)
    from .platform_check import display_problem

    if problem := display_problem():
        print(f"edge-console: {problem}", file=sys.stderr)
        return 2
    return run_console(launch)


def run_headless_compare(argv: list[str]) -> int:
    """Qt-free: `edge-console compare` runs in scripts and on machines without a display."""
    from .compare.cli import main as compare_main

    return compare_main(argv)


def parse_command_line(argv: list[str]) -> Launch:
    parser = build_parser()
    args = parser.parse_args(argv)
    addresses = []
    for text in args.add:
        try:
            addresses.append(parse_host_port(text))
        except ValueError as exc:
            parser.error(f"--add {text}: {exc}")
    if args.screenshot is not None and args.after < 0:
        parser.error("--after must be 0 or more seconds")
    return Launch(args, addresses)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_console(launch: Launch) -> int:
    from .qt_compat import guard_signal_emit_refcount

    args = launch.args
    binding_warning = guard_signal_emit_refcount()  # probes only on the PySide6 release that needs it
    with tempfile.TemporaryDirectory(prefix="edge-console-") as scratch_dir:
        scratch = Path(scratch_dir)
        app = make_application()
        simulated = start_demo(args) if args.demo else None
        fleet = open_fleet(args, scratch, simulated)
        try:
            fleet.start()
            for address in launch.addresses:
                fleet.add_manual(address)
            if simulated is not None:
                from .demo import follow_demo_fleet

                follow_demo_fleet(fleet, simulated)
            window = show_window(fleet, window_settings(args, scratch), demo=args.demo, warning=binding_warning)
            outcome = Outcome()
            if args.screenshot is not None:
                schedule_screenshot(app, window, args.screenshot, args.after, outcome,
                                    wait_for_devices=args.demo_count if args.demo else 0)
            return run_event_loop(app, window) or outcome.exit_code
        finally:
            fleet.close()
            if simulated is not None:
                simulated.stop()


def make_application() -> QApplication:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .store import APP_NAME

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName("Edge Console")
    resources = resources_dir()
    if (resources / "icons" / "edge-console.svg").exists():
        app.setWindowIcon(QIcon(str(resources / "icons" / "edge-console.svg")))
    if (resources / "console.qss").exists():
        app.setStyleSheet((resources / "console.qss").read_text())
    return app


def start_demo(args: argparse.Namespace) -> SimulatedFleet:
    from .demo import DEMO_INTERFACE, SimulatedFleet

    if args.browse_interface and set(args.browse_interface) != {DEMO_INTERFACE}:
        print(f"edge-console: --demo browses {DEMO_INTERFACE} only; ignoring --browse-interface", file=sys.stderr)
    return SimulatedFleet(count=args.demo_count).start()


def open_fleet(args: argparse.Namespace, scratch: Path, simulated: SimulatedFleet | None) -> Fleet:
    from .demo import DEMO_INTERFACE, DemoOnlyDiscovery
    from .fleet import Fleet
    from .store import default_database_path

    if simulated is not None:
        interfaces: list[str] | None = [DEMO_INTERFACE]
        database = args.db or scratch / "demo.sqlite"
        return Fleet(database, interfaces, discover=not args.no_discovery,
                     announcements=lambda discovery, runtime: DemoOnlyDiscovery(discovery, simulated, runtime.tasks))
    interfaces = args.browse_interface or None  # None: all interfaces, the right default on a site
    return Fleet(args.db or default_database_path(), interfaces, discover=not args.no_discovery)


def window_settings(args: argparse.Namespace, scratch: Path) -> QSettings:
    """The user's saved layout; a screenshot must not depend on (or change) it."""
    from PySide6.QtCore import QSettings

    from .store import APP_NAME

    if args.screenshot:
        return QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_NAME, "console")


def show_window(fleet: Fleet, settings: QSettings, *, demo: bool, warning: str | None) -> MainWindow:
    from .main_window import MainWindow

    window = MainWindow(fleet, settings)
    if demo:  # a fresh fleet has seconds of history: a short window and every device on the charts
        window.charts.set_overlay_all(True)
        window.charts.window_box.setCurrentText("1 min")
    window.show()
    if warning:
        window.statusBar().showMessage(warning, 30000)
    return window


@dataclass
class Outcome:
    exit_code: int = 0


def schedule_screenshot(app: QApplication, window: MainWindow, path: Path, after_s: float, outcome: Outcome,
                        wait_for_devices: int = 0) -> None:
    """Save the window as a PNG after `after_s` seconds, then quit. With `wait_for_devices`, wait (up to
    SCREENSHOT_READY_GRACE_S longer) until that many grid tiles show a live picture: a demo on a busy machine may
    take longer than `after_s` to start its devices, and a screenshot of "connecting…" tiles shows nothing."""
    from PySide6.QtCore import QTimer

    deadline_ms = int((after_s + SCREENSHOT_READY_GRACE_S) * 1000)
    waited_ms = int(after_s * 1000)

    def ready() -> bool:
        tiles = list(window.grid.tiles.values())
        return len(tiles) >= wait_for_devices and all(tile.showing_live_picture for tile in tiles)

    def attempt() -> None:
        nonlocal waited_ms
        if not ready() and waited_ms < deadline_ms:
            waited_ms += SCREENSHOT_POLL_MS
            QTimer.singleShot(SCREENSHOT_POLL_MS, window, attempt)
            return
        image = window.grab().toImage()
        image.setText(LAYOUT_TEXT_KEY, json.dumps(screenshot_layout(window)))
        if not image.save(str(path), "PNG"):
            print(f"edge-console: could not write {path}", file=sys.stderr)
            outcome.exit_code = 1
        window.close()
        app.quit()

    QTimer.singleShot(waited_ms, window, attempt)


def screenshot_layout(window: MainWindow) -> dict:
    """Where the grid's tiles are in the screenshot and which devices the table lists, so whoever checks a
    screenshot (the demo test) knows which pixels should show which device."""
    from PySide6.QtCore import QPoint

    tiles = []
    for state, tile in window.grid.tiles.items():
        corner = tile.mapTo(window, QPoint(0, 0))
        tiles.append({"device": state.name, "rect": [corner.x(), corner.y(), tile.width(), tile.height()],
                      "live": tile.showing_live_picture,
                      "classes": dict(enumerate(state.class_names))})
    model = window.table.model
    rows = [{"name": model.index(r, 0).data(), "status": model.index(r, 1).data()} for r in range(model.rowCount())]
    return {"grid_visible": window.tabs.currentWidget() is window.grid, "tiles": tiles, "table": rows}


def run_event_loop(app: QApplication, window: MainWindow) -> int:
    from PySide6.QtCore import QTimer

    # Let Ctrl-C in the terminal close the window cleanly (Python handles signals only between Qt events).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer(interval=250)
    tick.timeout.connect(lambda: None)
    tick.start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
