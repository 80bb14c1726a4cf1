"""`edge-console`: the operator console's entry point.

    edge-console                          browse all interfaces, database in the user's data directory
    edge-console --demo                   a simulated fleet of 3 devices on 127.0.0.1, shown in the grid
    edge-console --demo --screenshot console.png --after 8     render the window to a PNG and exit 0
    edge-console --demo --screenshot small.png --size 1366x768  ...as the window on a 1366x768 screen
    edge-console --demo --open-compare "Packing line 2" --compare-model parts-v2   Compare opened, continuous
                                          (the README's pictures: see screenshot.py)
    edge-console --add 192.168.10.21:8470 --browse-interface 192.168.10.5
    edge-console compare --device HOST:PORT [--model PATH] [--frames N] [--json] [--save-frames DIR]
                                          device vs local model on the device's own frames, headless (no Qt
                                          loaded); `edge-console compare --help` lists its options
    edge-console [--data-dir DIR] pair HOST:PORT | pairings HOST:PORT | release ... | push ... | rollback ...
                 | audit export ...       pairing, releases, rollouts and the audit trail, headless
                                          (`edge-console push --help` ...); what a device said is printed
                                          escaped, and a device's bad answer is one line, never a traceback

`main` is a sequence of small steps: parse, check the display, build the application, the fleet (and the demo),
the window, then run the event loop; each step is a function below, in that order.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_console.client.net.addresses import EXAMPLE, DeviceAddress, parse_host_port
from edge_console.core.paths import resources_dir
from edge_console.core.terminal_text import for_terminal

if TYPE_CHECKING:  # Qt is imported only once the arguments are good: `--help` and mistakes stay instant
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from edge_console.console.demo import SimulatedFleet
    from edge_console.console.fleet import Fleet
    from edge_console.console.main_window import MainWindow

# What `--help` says of the commands that run without a window (each has its own --help).
COMMANDS_HELP = """commands (headless, no window; `edge-console COMMAND --help` for each):
  compare --device HOST:PORT   the device's own frames through a model on this laptop
  pair HOST:PORT               pair this console with a device, with the code it prints
  pairings HOST:PORT           list (or --revoke) the consoles paired with a device (admin)
  release import|inspect|list|trust|remove|install-trust ...
                               the release library and the release authority this console trusts
  release-key                  this console's delivery key, for `edge-bundle keygen --console-key`
  push --release ID --devices HOST:PORT,...
                               a staged rollout: canaries, batches, halt on failure
  rollback --device HOST:PORT  a device back to its previous (or a retained) model
  audit export [--devices ...] the console's and the devices' audit trails, each chain verified
  [--data-dir DIR] before a command: the console data it uses (default: the user's data directory)"""

DEFAULT_SCREENSHOT_SIZE = (1440, 900)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-console", description="Operator console for edge-AI devices. With no command, the window opens.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COMMANDS_HELP)
    parser.add_argument("--demo", action="store_true",
                        help="start a simulated fleet of 3 devices on 127.0.0.1 and show it (stopped on exit)")
    parser.add_argument("--demo-count", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--screenshot", type=Path, metavar="PATH", help="save the main window as PNG, then exit")
    parser.add_argument("--size", type=window_size, metavar="WxH",
                        help="window size, e.g. 1366x768 (with --screenshot on a headless machine: the size of the "
                             "screen the window is laid out for; default 1440x900)")
    parser.add_argument("--after", type=float, default=8.0, metavar="SECONDS",
                        help="how long to run before --screenshot (default 8; with --demo, up to 30 s longer "
                             "until every device shows its picture)")
    parser.add_argument("--open-compare", metavar="NAME",
                        help="open the Compare panel of the device called NAME once it answers, and compare "
                             "continuously (with --screenshot: a picture of that panel)")
    parser.add_argument("--compare-model", metavar="MODEL",
                        help="with --open-compare: the local model, a file or a model of the library (parts-v2)")
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


def window_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height)) if sep else None
    except ValueError:
        size = None
    if size is None or not (640 <= size[0] <= 7680 and 480 <= size[1] <= 4320):
        raise argparse.ArgumentTypeError(f"{text!r}: give the size as WIDTHxHEIGHT, e.g. 1366x768 (640x480 to "
                                         "7680x4320)")
    return size


@dataclass
class Launch:
    """What the command line asked for, checked."""

    args: argparse.Namespace
    addresses: list[DeviceAddress]
    compare_model: Path | None = None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = headless_command(argv)
    if command == "compare":  # `--data-dir DIR compare ...` as the other commands take it: compare's own option
        at = argv.index("compare")
        return run_headless_compare(argv[at + 1:] + argv[:at])
    if command:
        from edge_console.client.releases.cli import main as releases_main  # Qt-free: releases, pairing, pushes, audit

        return releases_main(argv)
    launch = parse_command_line(argv)
    configure_logging(launch.args.verbose)
    if missing := missing_window_library():
        print(f"edge-console: the window needs {missing}, which is not installed here: it comes with the console "
              "extra (pip install 'edge-console[console]'). The headless commands need only the client extra "
              "('edge-console[client]'): edge-console push|rollback|release|audit|compare|pair|pairings (see "
              "edge-console --help)", file=sys.stderr)
        return 2
    from edge_console.console.platform_check import display_problem, emulate_screen

    if launch.args.screenshot is not None:  # headless: lay the window out for a screen of the asked size
        emulate_screen(*(launch.args.size or DEFAULT_SCREENSHOT_SIZE))
    if problem := display_problem():
        print(f"edge-console: {problem}", file=sys.stderr)
        return 2
    return run_console(launch)


HEADLESS_COMMANDS = ("release", "release-key", "pair", "pairings", "push", "rollback", "audit")


# What the window needs beyond the client (pyproject.toml's `console` extra); the headless commands need none of it.
WINDOW_LIBRARIES = ("PySide6", "shiboken6", "pyqtgraph")


def missing_window_library() -> str | None:
    """The first of the window's libraries that is not installed (a client-only install), or None. Looked up, not
    imported: the check costs nothing when they are there."""
    for name in WINDOW_LIBRARIES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ImportError:  # an import hook that refuses it, as if absent
            return name
    return None


def headless_command(argv: list[str]) -> str | None:
    """The headless command asked for, if any: the first word, or the word after the data folder those commands
    take first (`edge-console --data-dir DIR pairings HOST:PORT`)."""
    rest = argv[2:] if argv[:1] == ["--data-dir"] else argv[1:] if argv[:1] and argv[0].startswith("--data-dir=") \
        else argv
    return rest[0] if rest and rest[0] in (*HEADLESS_COMMANDS, "compare") else None


def run_headless_compare(argv: list[str]) -> int:
    """Qt-free: `edge-console compare` runs in scripts and on machines without a display."""
    from edge_console.client.compare.cli import main as compare_main

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
    compare_model = None
    if args.compare_model:
        if not args.open_compare:
            parser.error("--compare-model goes with --open-compare NAME")
        from edge_console.core.detection.model_library import ModelLibrary
        from edge_console.core.errors import EdgeConsoleError
        from edge_console.core.paths import models_dir

        try:
            compare_model = ModelLibrary([models_dir()]).resolve(args.compare_model)
        except (EdgeConsoleError, OSError, ValueError) as exc:
            parser.error(f"--compare-model {args.compare_model}: {exc}")
    return Launch(args, addresses, compare_model)


class TerminalSafeFormatter(logging.Formatter):
    """Log lines (and tracebacks) often quote what a device sent: escaped like every other device text printed to
    a terminal, line breaks kept."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal(super().format(record), keep_newlines=True)


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalSafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def run_console(launch: Launch) -> int:
    from edge_console.console.qt_compat import guard_signal_emit_refcount

    args = launch.args
    binding_warning = guard_signal_emit_refcount()  # probes only on the PySide6 release that needs it
    with tempfile.TemporaryDirectory(prefix="edge-console-") as scratch_dir:
        scratch = Path(scratch_dir)
        app = make_application()
        simulated = start_demo(args, demo_data_dir(args, scratch)) if args.demo else None
        fleet = open_fleet(args, scratch, simulated)
        try:
            fleet.start()
            for address in launch.addresses:
                fleet.add_manual(address)
            if simulated is not None:
                from edge_console.console.demo import follow_demo_fleet, prepare_demo_release

                follow_demo_fleet(fleet, simulated)
                prepare_demo_release(fleet, simulated)
            window = show_window(fleet, window_settings(args, scratch), demo=args.demo, warning=binding_warning,
                                 size=args.size or (DEFAULT_SCREENSHOT_SIZE if args.screenshot else None),
                                 demo_count=args.demo_count)
            from edge_console.console.screenshot import Outcome, open_compare_when_listed, schedule_screenshot

            outcome = Outcome()
            if args.open_compare:
                open_compare_when_listed(window, args.open_compare, launch.compare_model)
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

    from edge_console.client.store import APP_NAME

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


def demo_data_dir(args: argparse.Namespace, scratch: Path) -> Path:
    """The demo's console data (its identity, pins, releases): beside --db, else in the run's scratch folder."""
    return args.db.parent if args.db else scratch


def start_demo(args: argparse.Namespace, data_dir: Path) -> SimulatedFleet:
    from edge_console.client.trust_store import console_identity
    from edge_console.console.demo import DEMO_INTERFACE, SimulatedFleet

    if args.browse_interface and set(args.browse_interface) != {DEMO_INTERFACE}:
        print(f"edge-console: --demo browses {DEMO_INTERFACE} only; ignoring --browse-interface", file=sys.stderr)
    # The simulated devices are paired with this console through the files on this machine (no code to type).
    identity = console_identity(data_dir)
    return SimulatedFleet(count=args.demo_count, console_certificate=identity.cert_path).start()


def open_fleet(args: argparse.Namespace, scratch: Path, simulated: SimulatedFleet | None) -> Fleet:
    from edge_console.client.store import default_database_path
    from edge_console.console.demo import DEMO_INTERFACE, DemoOnlyDiscovery
    from edge_console.console.fleet import Fleet

    if simulated is not None:
        interfaces: list[str] | None = [DEMO_INTERFACE]
        database = args.db or scratch / "demo.sqlite"
        return Fleet(database, interfaces, discover=not args.no_discovery, data_dir=demo_data_dir(args, scratch),
                     announcements=lambda discovery, runtime: DemoOnlyDiscovery(discovery, simulated, runtime.tasks))
    interfaces = args.browse_interface or None  # None: all interfaces, the right default on a site
    return Fleet(args.db or default_database_path(), interfaces, discover=not args.no_discovery)


def window_settings(args: argparse.Namespace, scratch: Path) -> QSettings:
    """The user's saved layout; a screenshot must not depend on (or change) it."""
    from PySide6.QtCore import QSettings

    from edge_console.client.store import APP_NAME

    if args.screenshot:
        return QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_NAME, "console")


def show_window(fleet: Fleet, settings: QSettings, *, demo: bool, warning: str | None,
                size: tuple[int, int] | None = None, demo_count: int = 3) -> MainWindow:
    from edge_console.console.demo import DEMO_INTERFACE
    from edge_console.console.main_window import MainWindow

    window = MainWindow(fleet, settings)
    if demo:  # a fresh fleet has seconds of history: a short window and every device on the charts
        window.charts.set_overlay_all(True)
        window.charts.window_box.setCurrentText("1 min")
        # Its agents take seconds to start: say so, rather than an empty window.
        window.grid.set_empty_text(f"Starting the simulated fleet ({demo_count} devices on {DEMO_INTERFACE})…\n"
                                   "They appear here as soon as they answer.")
    window.show()
    if size is not None:
        window.resize(*size)
        window.move(window.screen().availableGeometry().topLeft())
    if warning:
        window.statusBar().showMessage(warning, 30000)
    return window


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
