"""Releases ▸ Library with real signed releases: the authority trusted through its dialog, a release file imported
through the file dialog and verified in the background, a tampered one refused with its reason and unpushable,
the golden set drawn with its expected boxes, and the model card shown as text, never as HTML."""

from __future__ import annotations

from PySide6.QtCore import QRectF

from edge_console.console.colors import class_color
from edge_console.console.releases_ui.golden_view import THUMB
from edge_console.console.releases_ui.library_view import REFUSED_COLOR
from tests.support.pixels import count_color, outline_color_fraction

from .support import LONG, answer_file_dialog, make_site, open_window

HOSTILE_CARD = """# Parts detector 2.0.0

Trained on synthetic conveyor scenes.

<h1>SHOUTED</h1> <a href="http://example.invalid/x">click me</a>

![secret](file:///etc/hostname)
"""


def _menu_action(window, text: str):
    for menu_action in window.menuBar().actions():
        for action in menu_action.menu().actions():
            if action.text().replace("&", "") == text:
                return action
    raise AssertionError(f"no menu action {text!r}")


def test_trust_import_and_show_a_verified_and_a_tampered_release(qtbot, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    card = tmp_path / "card.md"
    card.write_text(HOSTILE_CARD)
    good = site.release("2.0.0", card=card)
    other = site.release("2.0.1")
    raw = bytearray(other.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the bundle
    tampered = site.usb / "parts-2.0.1-tampered.edgerelease"
    tampered.write_bytes(bytes(raw))
    other.unlink()
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)

    # Releases > Trust release authority…: the file dialog, answered as a user would.
    answerer = answer_file_dialog(site.root)
    _menu_action(window, "Trust release authority…").trigger()
    answerer.stop()
    library = window.release_views.tab.library
    qtbot.waitUntil(lambda: window.releases.trusted_root == 1, timeout=LONG)
    qtbot.waitUntil(lambda: "root v1" in library.trust_label.text(), timeout=LONG)
    assert window.tabs.currentWidget() is window.release_views.tab

    # Import release file… (Ctrl+I) through the dialog: verified in the background, with progress shown.
    answerer = answer_file_dialog([good, tampered])
    _menu_action(window, "Import release file…").trigger()
    answerer.stop()
    assert library.progress.isVisible() or window.releases.entries, "the import shows that it is working"
    qtbot.waitUntil(lambda: len(window.releases.entries) == 2 and not window.releases.importing, timeout=LONG)
    assert "1 verified, 1 refused" in library.message.text()

    by_label = {library.list.item(i).text(): library.list.item(i) for i in range(library.list.count())}
    refused_item = next(item for text, item in by_label.items() if "REFUSED" in text)
    assert refused_item.foreground().color() == REFUSED_COLOR
    library.list.setCurrentItem(refused_item)
    refused = library.current
    assert refused is not None and not refused.verified and refused.problem
    assert "REFUSED" in library.details.text()
    assert not library.push_button.isEnabled()
    assert refused.problem[:40] in library.push_button.toolTip().replace("&#x27;", "'").replace("&quot;", '"')
    assert library.golden.count() == 0, "an unverified release's files are not shown"

    verified_item = next(item for text, item in by_label.items() if "verified" in text)
    library.list.setCurrentItem(verified_item)
    entry = library.current
    assert entry.verified and entry.label == "parts 2.0.0"
    assert library.push_button.isEnabled() and library.preview_button.isEnabled()
    shown = library.details.text()
    signer = site.authority.key("targets").keyid[:16]
    for expected in ("parts 2.0.0", "model line", "verified", signer, "expires", "architectures: any",
                     f"{len(entry.golden)} frames"):
        assert expected in shown, expected

    # The model card: Markdown as text; its HTML, link and image do nothing.
    qtbot.waitUntil(lambda: "Parts detector" in library.card.toPlainText(), timeout=LONG)
    card_text = library.card.toPlainText()
    assert "<h1>SHOUTED</h1>" in card_text, "raw HTML in a card is shown as the characters it is"
    assert not library.card.openLinks() and not library.card.openExternalLinks(), "a card's link goes nowhere"

    # The golden set: one thumbnail per frame, each with its expected boxes in the class colours.
    library.detail_tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: library.golden.count() == len(entry.golden), timeout=LONG)
    assert library.detail_tabs.tabText(1) == f"Golden set ({len(entry.golden)})"
    frame_index, frame = next((i, g) for i, g in enumerate(entry.golden) if g["detections"])
    thumb = library.golden.images[frame_index]
    scale = min(THUMB.width() / 640, THUMB.height() / 480)
    for det in frame["detections"][:3]:
        x1, y1, x2, y2 = (v * scale for v in det["box"])
        color = class_color(det["class_id"], det["class_name"])
        assert outline_color_fraction(thumb, x1, y1, x2, y2, color) > 0.6, det
    picture = library.golden.grab().toImage()
    first = frame["detections"][0]
    assert count_color(picture, class_color(first["class_id"], first["class_name"]), 30) > 40, \
        "the boxes are on screen, not only in the thumbnails' images"
    rect = library.golden.visualItemRect(library.golden.item(frame_index))
    assert QRectF(library.golden.viewport().rect()).intersects(QRectF(rect))
    window.close()


def test_an_import_before_trust_is_refused_with_what_to_do(qtbot, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    site.release("2.0.0")
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    library = window.open_releases().library
    assert "Trusts no release authority" in library.trust_label.text()
    library.import_paths([site.usb])  # the folder of a USB stick
    qtbot.waitUntil(lambda: len(window.releases.entries) == 1, timeout=LONG)
    entry = window.releases.entries[0]
    assert not entry.verified and "root.json" in entry.problem
    assert not library.push_button.isEnabled()
    assert "Trust" in library.details.text()
    window.close()


def test_bad_input_is_refused_with_a_clear_reason(qtbot, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    good = site.release("2.0.0")
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    center = window.releases
    library = window.open_releases().library
    said: list[tuple[str, str]] = []
    center.message.connect(lambda text, kind: said.append((text, kind)))

    not_a_root = tmp_path / "root.json"
    not_a_root.write_text("{ this is not metadata")
    center.trust_root(not_a_root)
    qtbot.waitUntil(lambda: bool(said), timeout=LONG)
    assert said[-1][1] == "error" and "is not a release authority's root.json" in said[-1][0]
    assert center.trusted_root is None
    center.trust_root(site.root)
    qtbot.waitUntil(lambda: center.trusted_root == 1, timeout=LONG)

    empty = tmp_path / "empty-stick"
    empty.mkdir()
    library.import_paths([empty])
    qtbot.waitUntil(lambda: not center.importing and library.message.isVisible(), timeout=LONG)
    assert library.message.text().startswith("No release files (*.edgerelease) in ")
    assert "#8a1c1c" in library.message.styleSheet(), "said as a problem"

    junk = site.usb / "holiday-photo.edgerelease"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    gone = site.usb / "gone.edgerelease"
    library.import_paths([junk, gone, good])
    qtbot.waitUntil(lambda: not center.importing and len(center.entries) == 2, timeout=LONG)
    text = library.message.text()
    assert text.startswith("Imported 3 release file(s): 1 verified, 2 refused") and "not a usable release" in text
    refused = next(e for e in center.entries if not e.verified)
    assert refused.problem.startswith("not a usable release file") and refused.source.endswith("holiday-photo"
                                                                                                ".edgerelease")
    assert [e.label for e in center.verified()] == ["parts 2.0.0"], "the good file on the same stick still counts"
    window.close()
