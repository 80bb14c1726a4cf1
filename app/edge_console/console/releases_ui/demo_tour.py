"""The first minute of `edge-console --demo` with releases, played by the program itself: the demo fleet comes up,
the demo's parts 2.0.0 release is in the library, it is pushed to the device running parts-v1 (Packing line 2)
as the canary, its probation is watched, and the rollout is cancelled and rolled back. The README's release
pictures are taken on the way, from the running program:

    python -m edge_console.console.releases_ui.demo_tour --out resources/

writes releases.png (the library), rollout.png (the canary on probation) and fleet-versions.png (the versions
matrix meanwhile), prints how long each step took, and exits 0 only if the device really ran 2.0.0 and then really
returned to parts-v1 (as the device itself reports). Offscreen when there is no display.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CANARY = "Packing line 2"  # the demo device that runs parts-v1
RELEASE = "parts 2.0.0"
STEP_TIMEOUT_S = 180.0


class TourFailed(Exception):
    pass


def _wait(app, what: str, condition: Callable[[], object], timeout: float = STEP_TIMEOUT_S) -> object:
    """Run the event loop until `condition()` is true (this script is the user; the program runs as always)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise TourFailed(f"gave up waiting for {what} after {timeout:.0f} s")


def _settle(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def tour(out: Path | None, size: tuple[int, int]) -> int:
    from edge_console.client.releases.facts import role_of
    from edge_console.console.cli import build_parser, make_application, open_fleet, show_window, start_demo
    from edge_console.console.demo import follow_demo_fleet, prepare_demo_release
    from edge_console.console.platform_check import emulate_screen
    from edge_console.console.releases_ui.confirm import answer_next
    from edge_console.console.releases_ui.workspace import LIBRARY, ROLLOUTS, VERSIONS

    emulate_screen(*size)
    args = build_parser().parse_args(["--demo"])
    started = time.monotonic()
    log = []

    def say(text: str) -> None:
        log.append(f"{time.monotonic() - started:6.1f} s  {text}")
        print(log[-1], flush=True)

    with tempfile.TemporaryDirectory(prefix="edge-console-tour-") as scratch_dir:
        scratch = Path(scratch_dir)
        app = make_application()
        simulated = start_demo(args, scratch)
        fleet = open_fleet(args, scratch, simulated)
        window = None
        try:
            from PySide6.QtCore import QSettings, Qt

            fleet.start()
            follow_demo_fleet(fleet, simulated)
            prepare_demo_release(fleet, simulated)
            window = show_window(fleet, QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat),
                                 demo=True, warning=None, size=size)
            center = window.releases
            for dock in (window.details_dock, window.charts_dock):
                dock.hide()  # the pictures are of the release views: give them the room
            window.resizeDocks([window.devices_dock], [size[0] // 5], Qt.Orientation.Horizontal)
            _wait(app, "the three demo devices", lambda: len([
                s for s in fleet.states if s.connected and s.info.get("hardware") and role_of(s)]) >= 3)
            say("the demo fleet answers, paired")
            tab = window.open_releases(LIBRARY)
            entry = _wait(app, f"the demo release {RELEASE}", lambda: _entry(center, app))
            say(f"{RELEASE} is in the library, verified: {entry.verified}")
            if not entry.verified:
                raise TourFailed(f"the demo release did not verify: {entry.problem}")
            canary = next(s for s in fleet.states if s.name == CANARY)
            before = _running_line(center, canary, app)
            say(f"{CANARY} runs {before}")

            tab.library.select(entry.id)
            tab.library.detail_tabs.setCurrentIndex(1)  # the golden set, with its expected boxes
            _wait(app, "the golden set's thumbnails", lambda: tab.library.golden.count() > 0)
            _settle(app, 0.5)
            _save(window, out, "releases.png", say)

            dialog = tab.open_push(entry)
            _wait(app, "every device's answers (the dialog says 'not known yet' until then)",
                  lambda: canary in dialog.items and canary not in dialog.reasons
                  and not any(why.startswith("not known yet") for why in dialog.reasons.values()))
            dialog.set_canaries([canary])
            say(f"push: {dialog.summary.text()}")
            dialog.start_button.click()
            rollout_id = tab.rollouts.shown.id
            _wait(app, "the canary's probation", lambda: _step(center, rollout_id, CANARY).record.get("state")
                  == "active")
            say(f"{CANARY} switched to {RELEASE}: on probation")
            _wait(app, "the probation countdown", lambda: tab.rollouts.table.item(0, 6).text().endswith("s left"))
            window.open_releases(ROLLOUTS)
            _settle(app, 1.5)
            _save(window, out, "rollout.png", say)
            tab = window.open_releases(VERSIONS)  # the matrix while the canary is on probation
            tab.versions.choose_release(entry.id)
            _wait(app, "every device's versions, the canary's probation among them", lambda: all(
                center.versions.models.get(s.device_id or "") for s in fleet.states)
                and center.versions.probation_left(canary.device_id or "") is not None)
            _settle(app, 1.5)
            _save(window, out, "fleet-versions.png", say)
            now = _running_line(center, canary, app)
            if now != RELEASE:
                raise TourFailed(f"{CANARY} says it runs {now}, not {RELEASE}")

            asked: list[str] = []
            answer = answer_next(True, asked)  # the tour says yes to each question, as the README's steps do
            tab.rollouts.cancel_button.click()
            _wait(app, "the cancel", lambda: not center.rollouts.is_running(rollout_id))
            say(f"rollout {center.rollouts.rollouts[rollout_id].status}; offered: {tab.rollouts.undo_button.text()}")
            answer = answer_next(True, asked)
            tab.rollouts.undo_button.click()
            answer.stop()
            say(f"asked first: {' | '.join(a.splitlines()[0] for a in asked)}")
            _wait(app, "the rollback", lambda: center.rollouts.rollouts[rollout_id].status == "rolled_back"
                  and not center.rollouts.is_running(rollout_id))
            after = _running_line(center, canary, app, fresh=True)
            say(f"rolled back: {CANARY} runs {after}")
            if after != before:
                raise TourFailed(f"{CANARY} runs {after} after the rollback, not {before}")
            return 0
        finally:
            if window is not None:
                answer = answer_next(True)  # a tour that failed mid-rollout quits anyway (it stays resumable)
                window.close()
                answer.stop()
            fleet.close()
            simulated.stop()


def _entry(center, app):
    """The demo release once the demo has made it (in the background); the library is read again meanwhile."""
    found = next((e for e in center.entries if e.label == RELEASE), None)
    if found is None:
        _settle(app, 1.0)
        center.reload()
    return found


def _step(center, rollout_id: str, name: str):
    return next(s for s in center.rollouts.rollouts[rollout_id].steps if s.name == name)


def _running_line(center, state, app, fresh: bool = False) -> str:
    """What the device itself says it runs (its GET /v1/models, read by the console's versions poll)."""
    versions = center.versions
    asked = time.monotonic()
    if fresh or state.device_id not in versions.models:
        versions.refresh([state])
    _wait(app, f"{state.name}'s versions", lambda: versions.fetched_at.get(state.device_id or "", 0) >= asked
          if fresh else state.device_id in versions.models)
    running = versions.models[state.device_id or ""]["running"]
    return f"{running['line']} {running['version']}"


def _save(window, out: Path | None, name: str, say: Callable[[str], None]) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(out / name)):
        raise TourFailed(f"cannot write {out / name}")
    say(f"saved {out / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_console.console.releases_ui.demo_tour",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for the screenshots (none taken without it)")
    parser.add_argument("--size", default="1440x900", help="window size, WIDTHxHEIGHT (default 1440x900)")
    args = parser.parse_args(argv)
    from edge_console.console.cli import window_size

    try:
        size = window_size(args.size)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    try:
        return tour(args.out, size)
    except TourFailed as exc:
        print(f"demo tour: FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
