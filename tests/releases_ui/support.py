"""What the release views' tests share: a real release authority with signed releases, agents that trust it (with
a short probation), a main window on a test fleet, and ways to read what the window shows."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.console.main_window import MainWindow
from edge_console.core.paths import demo_model
from tests.support.console_trust import TEST_TRUST
from tests.support.updates import build, rewrite_bundle

LONG = 90_000  # ms: agents on a busy 2-core machine install, check and probate models slowly
GOLDEN_COUNT = 4


@dataclass
class Site:
    """A release authority, its root.json, and a folder for releases (a USB stick)."""

    authority: ReleaseAuthority
    root: Path
    golden: Path
    usb: Path

    def release(self, version: str, *, model: Path | None = None, name: str | None = None, **options) -> Path:
        bundle = build(model or demo_model("parts-v2"), "parts", version, self.golden, self.usb.parent, **options)
        out = self.usb / (name or f"parts-{version}.edgerelease")
        return self.authority.sign(bundle, out)

    def weak_release(self, version: str) -> Path:
        """A properly signed release whose model is parts-v1 under a parts-v2 golden set: it verifies everywhere
        and fails its golden-set check on every device."""
        good = build(demo_model("parts-v2"), "parts", version, self.golden, self.usb.parent)
        weak = rewrite_bundle(good, self.usb.parent / f"weak-{version}.edgebundle",
                              replace={"model.onnx": demo_model("parts-v1").read_bytes()})
        return self.authority.sign(weak, self.usb / f"parts-{version}.edgerelease")


_AUTHORITY: Path | None = None  # one authority per test run: key generation and its golden frames are not free


def make_site(base: Path) -> Site:
    global _AUTHORITY
    if _AUTHORITY is None:
        _AUTHORITY = Path(tempfile.mkdtemp(prefix="edge-console-test-authority-"))
        ReleaseAuthority.create(_AUTHORITY / "authority")
        golden_frames(_AUTHORITY / "golden", count=GOLDEN_COUNT)
    # A copy per test: signing writes the authority's targets metadata, and each test's versions are its own.
    shutil.copytree(_AUTHORITY, base / "site")
    authority = ReleaseAuthority(base / "site" / "authority")
    root = base / "site" / "root.json"
    root.write_bytes(authority.root_json())
    usb = base / "usb"
    usb.mkdir()
    return Site(authority, root, base / "site" / "golden", usb)


def trusting_agent(agent_factory, name: str, site: Site, *, probation_s: float = 2.0, model: str = "parts-v1",
                   role: str = "admin"):
    """A started agent running `model` that trusts the site's authority (its release trust installed in its state
    folder before it starts), with a short probation, and on which the tests' console is enrolled with `role`."""
    return agent_factory(name, model=demo_model(model), advertise=False, release_root=site.authority.root_json(),
                         role=role, settings={"probation_s": probation_s}).start()


def open_window(fleet, tmp_path: Path, qtbot) -> MainWindow:
    window = MainWindow(fleet, QSettings(str(tmp_path / f"settings-{id(fleet)}.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    return window


def add_and_wait(fleet, agents, qtbot) -> list:
    """Add the agents by address and wait until each answers with its hardware and this console's role."""
    from edge_console.client.releases.facts import role_of

    for agent in agents:
        fleet.add_manual(agent.address)

    def ready() -> list | None:
        # Found by id: on a database that remembers them, the fleet may join a device added by address with its
        # remembered record, and the state it lists is the one that counts.
        states = [fleet.find(device_id=agent.device_id) for agent in agents]
        return states if all(s and s.connected and s.info.get("hardware") and role_of(s) for s in states) else None

    qtbot.waitUntil(lambda: ready() is not None, timeout=LONG)
    return ready()


def answer_file_dialog(paths: list[Path] | Path, interval_ms: int = 100) -> QTimer:
    """Answer the next file dialog with `paths` by typing their names into it, as a user would (offscreen, Qt's
    own dialog is used); a folder is typed as its whole path."""
    chosen = paths if isinstance(paths, list) else [paths]

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            return
        timer.stop()
        dialog.setDirectory(str(chosen[0].parent))
        names = " ".join(f'"{p.name}"' for p in chosen) if len(chosen) > 1 else chosen[0].name
        dialog.findChild(QLineEdit, "fileNameEdit").setText(str(chosen[0]) if chosen[0].is_dir() else names)
        dialog.accept()

    timer = QTimer(interval=interval_ms)
    timer.timeout.connect(answer)
    timer.start()
    return timer


def color_pixels(image: QImage, color: QColor, tolerance: int = 40) -> int:
    from tests.support.pixels import count_color

    return count_color(image, color, tolerance)


def device_api(agent, path: str, body: dict | None = None) -> dict:
    """The device's own answer (mutual TLS as the tests' console): what it really runs, not what a view says."""
    request = urllib.request.Request(f"https://{agent.address}{path}", method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=TEST_TRUST.ssl_for(agent), timeout=30) as response:
        return json.loads(response.read())


def running(agent) -> tuple[str, str]:
    """(line, version) of the model the device runs now."""
    model = device_api(agent, "/v1/models")["running"]
    return model["line"], model["version"]


def releases_ready(window, site: Site, releases: list[Path], qtbot):
    """The window's release center trusting the site's authority and holding `releases`, imported and checked
    (the dialogs that do this are driven in test_library_view); the Releases tab in front."""
    center = window.releases
    center.trust_root(site.root)
    qtbot.waitUntil(lambda: center.trusted_root == 1, timeout=LONG)
    tab = window.open_releases()
    tab.library.import_paths(releases)
    qtbot.waitUntil(lambda: len(center.entries) == len(releases) and not center.importing, timeout=LONG)
    return tab
