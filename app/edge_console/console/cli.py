"""`edge-console`: the operator console's entry point.

    edge-console                          browse all interfaces, database in the user's data directory
    edge-console --demo                   a simulated fleet of 3 devices on 127.0.0.1, shown in the grid
    edge-console --demo --screenshot console.png --after 8     render the window to a PNG and exit 0
    edge-console --add 192.168.10.21:8470 --browse-interface 192.168.10.5
    edge-console compare --device HOST:PORT [--model PATH] [--frames N] [--json] [--save-frames DIR]
                                          device vs local model on the device's own frames, headless (no Qt
                                          loaded); `edge-console compare --help` lists its options
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
from pathlib import Path

from edge_console.core.paths import resources_dir

from .net.addresses import DeviceAddress, parse_host_port


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
                        help="how long to run before --screenshot (default 8)")
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help="console database (default: the user's data directory; --demo uses a temporary one)")
    parser.add_argument("--browse-interface", action="append", metavar="ADDR", default=[],
                        help="IPv4 address of an interface to browse with mDNS; repeatable (default: all; "
                             "--demo forces 127.0.0.1)")
    parser.add_argument("--no-discovery", action="store_true", help="do not browse mDNS; use --add and the database")
    parser.add_argument("--add", action="append", metavar="HOST:PORT", default=[], help="add a device by address")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _parse_addresses(parser: argparse.ArgumentParser, texts: list[str]) -> list[DeviceAddress]:
    addresses = []
    for text in texts:
        try:
            addresses.append(parse_host_port(text))
        except ValueError as exc:
            parser.error(f"--add {text}: {exc}")
    return addresses


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        # Headless and Qt-free: it runs in scripts and on machines without a display.
        from .compare.cli import main as compare_main

        return compare_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    addresses = _parse_addresses(parser, args.add)
    if args.screenshot is not None and args.after < 0:
        parser.error("--after must be 0 or more seconds")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from .platform_check import display_problem

    if problem := display_problem():
        print(f"edge-console: {problem}", file=sys.stderr)
        return 2

    # Qt is imported only now, so `edge-console --help` and argument errors are instant.
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .demo import DEMO_INTERFACE, SimulatedFleet
    from .fleet import Fleet
    from .main_window import MainWindow
    from .qt_compat import guard_signal_emit_refcount
    from .store import APP_NAME, default_database_path

    binding_warning = guard_signal_emit_refcount()

    scratch = tempfile.TemporaryDirectory(prefix="edge-console-")
    if args.demo:
        if args.browse_interface and set(args.browse_interface) != {DEMO_INTERFACE}:
            print(f"edge-console: --demo browses {DEMO_INTERFACE} only; ignoring --browse-interface", file=sys.stderr)
        interfaces: list[str] | None = [DEMO_INTERFACE]
    else:
        interfaces = args.browse_interface or None  # None: all interfaces, the right default on a site
    database = args.db or (Path(scratch.name) / "demo.sqlite" if args.demo else default_database_path())

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName("Edge Console")
    resources = resources_dir()
    if (resources / "icons" / "edge-console.svg").exists():
        app.setWindowIcon(QIcon(str(resources / "icons" / "edge-console.svg")))
    if (resources / "console.qss").exists():
        app.setStyleSheet((resources / "console.qss").read_text())
    # A screenshot must not depend on (or change) the user's saved window layout.
    settings = (QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
                if args.screenshot else QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_NAME, "console"))

    fleet = Fleet(database, interfaces, discover=not args.no_discovery)
    simulated: SimulatedFleet | None = None
    exit_code = 0
    try:
        fleet.start()
        for address in addresses:
            fleet.add_manual(address)
        if args.demo:
            simulated = SimulatedFleet(count=args.demo_count).start()
            _follow_demo_fleet(fleet, simulated)
        window = MainWindow(fleet, settings)
        if args.demo:  # a fresh fleet has seconds of history: a short window and every device on the charts
            window.charts.set_overlay_all(True)
            window.charts.window_box.setCurrentText("1 min")
        window.show()
        if binding_warning:
            window.statusBar().showMessage(binding_warning, 30000)

        if args.screenshot is not None:
            def take_screenshot() -> None:
                nonlocal exit_code
                if not window.grab().save(str(args.screenshot), "PNG"):
                    print(f"edge-console: could not write {args.screenshot}", file=sys.stderr)
                    exit_code = 1
                window.close()
                app.quit()
            QTimer.singleShot(int(args.after * 1000), take_screenshot)

        # Let Ctrl-C in the terminal close the window cleanly (Python handles signals only between Qt events).
        signal.signal(signal.SIGINT, lambda *_: window.close())
        tick = QTimer(interval=250)
        tick.timeout.connect(lambda: None)
        tick.start()
        rc = app.exec()
        return exit_code or rc
    finally:
        fleet.close()
        if simulated is not None:
            simulated.stop()
        scratch.cleanup()


def _follow_demo_fleet(fleet, simulated) -> None:
    """List only the demo's own devices, found through mDNS on loopback; if mDNS finds none of them (some
    containers have no multicast on loopback), add them by the addresses the simulator printed, and say so."""
    from PySide6.QtCore import QTimer

    fleet.discovery_filter = lambda service: service.device_id in simulated.device_ids()
    recheck = QTimer(fleet, interval=500)
    recheck.timeout.connect(fleet.recheck_deferred)
    recheck.start()

    def check() -> None:
        if any(state.announced for state in fleet.states):
            return
        listed = simulated.listening()
        for address, _name, _id in listed:
            fleet.add_manual(address)
        if listed:
            fleet.message.emit("mDNS found no demo device on 127.0.0.1; added them by address instead")
        elif not simulated.running:
            fleet.message.emit("the simulated fleet stopped: " + simulated.log_tail(3))

    QTimer.singleShot(6000, fleet, check)


if __name__ == "__main__":
    sys.exit(main())
