"""A hostile device (issue 9, console part): a fake agent on 127.0.0.1 that sends decompression bombs or a name
full of markup and invisible characters. The console refuses the bomb before decoding it (its memory stays where
it was) and says why on the device; the name is shown as the characters it is, everywhere."""

from __future__ import annotations

import resource

import pytest
from PySide6 import QtGui
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QToolTip, QWidget

from edge_console.console.compare.panel import ComparePanel
from edge_console.console.widgets.device_table import DeviceTable
from edge_console.console.widgets.preview_panel import PreviewPanel
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.paths import models_dir
from tests.support.fake_devices import FakeDeviceServer, parts_v2_info, scripted_app
from tests.support.pixels import jpeg_claiming, message_with_jpeg

LONG = 30_000
HOSTILE_NAME = "<h1>BIG</h1><a href='http://example.invalid/'>click</a> photo\u202egnp.exe\nline two\x00end"
MAX_RSS_GROWTH_MB = 150  # the bomb's canvas alone is 768 MB as BGR, 1 GB more as BGRA


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


@pytest.fixture
def bomb_device():
    bomb = message_with_jpeg(jpeg_claiming(16384, 16384), source_size=(640, 480))
    server = FakeDeviceServer(scripted_app(parts_v2_info("bomb01", "Bomb"), stream_message=lambda _i: bomb)).start()
    yield server
    server.stop()


def test_a_jpeg_larger_than_its_header_is_refused_undecoded(qtbot, fleet_factory, bomb_device):
    fleet = fleet_factory(discover=False)
    before = peak_rss_mb()
    state = fleet.add_manual(bomb_device.address)
    panel = PreviewPanel(state)
    qtbot.addWidget(panel)
    panel.resize(640, 520)
    panel.show()
    claim = "16384x16384 but its header says 640x480"
    qtbot.waitUntil(lambda: any(claim in e.message for e in state.errors), timeout=LONG)
    qtbot.wait(2000)  # twenty more bombs arrive meanwhile
    assert peak_rss_mb() - before < MAX_RSS_GROWTH_MB, "a bomb was decoded"
    assert state.latest_frame is None and state.status == "online"
    banner = panel.canvas._banner()
    assert claim in banner and "refused" in banner  # the device's preview says why it shows nothing
    panel.detach()


@pytest.fixture
def hostile_device():
    server = FakeDeviceServer(scripted_app(parts_v2_info("hostile01", HOSTILE_NAME))).start()
    yield server
    server.stop()


def rendered_text(rich: str) -> str:
    """What a reader sees of a text that Qt renders as HTML."""
    document = QTextDocument()
    document.setHtml(rich)
    return document.toPlainText()


def assert_shown_as_typed(text: str) -> None:
    assert "<h1>BIG</h1><a href='http://example.invalid/'>click</a>" in text
    assert "\u27e8U+202E\u27e9" in text and "\u202e" not in text  # the override is shown, it reverses nothing
    assert "line two\u2400end" in text and "\x00" not in text and "\u240a" in text  # NUL and newline visible


def tip_labels(widget: QWidget) -> list[QLabel]:
    return [label for label in widget.findChildren(QLabel) if label.metaObject().className() == "QTipLabel"]


def test_a_device_name_with_markup_is_shown_as_plain_text(qtbot, fleet_factory, hostile_device):
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(hostile_device.address)
    qtbot.waitUntil(lambda: state.device_id == "hostile01", timeout=LONG)
    table = DeviceTable(fleet)
    qtbot.addWidget(table)
    table.resize(700, 300)
    table.show()
    assert_shown_as_typed(table.model.index(0, 0).data())  # the row itself

    # The row's tooltip, as Qt shows it on hover: the label it pops up, grabbed.
    tooltip = table.model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert_shown_as_typed(rendered_text(tooltip) if QtGui.Qt.mightBeRichText(tooltip) else tooltip)
    QToolTip.showText(table.mapToGlobal(QPoint(20, 40)), tooltip, table)
    # Qt parents the tip label to the widget it describes: looking among the table's children (not every top-level
    # widget of the process, some of them half-destroyed by earlier tests on this worker) cannot touch a dead object.
    qtbot.waitUntil(lambda: any(w.isVisible() for w in tip_labels(table)), timeout=5000)
    tip = next(w for w in tip_labels(table) if w.isVisible())
    assert_shown_as_typed(rendered_text(tip.text()) if tip.textFormat() != Qt.TextFormat.PlainText else tip.text())
    line = tip.fontMetrics().height()
    assert tip.grab().height() < 8 * line  # a few plain lines; no heading, no link
    QToolTip.hideText()

    # The Compare panel's header names the device: the same characters, never a heading or a link.
    compare = ComparePanel(state, ModelLibrary([models_dir()]), fleet.runtime)  # the fleet's own state of it
    qtbot.addWidget(compare)
    compare.resize(1400, 860)
    compare.show()
    qtbot.waitUntil(lambda: compare.opened is not None, timeout=LONG)
    header: QLabel = compare.setup_label
    shown = rendered_text(header.text()) if header.textFormat() != Qt.TextFormat.PlainText else header.text()
    assert_shown_as_typed(shown)
    assert header.heightForWidth(header.width()) < 3 * header.fontMetrics().height()  # one line, not an <h1>
    compare.shutdown()
    compare.worker.join(30)
