"""The Compare panel's widgets and how they are arranged; `panel.py` holds the behaviour.

Everything sits in a scroll area: the panel then asks the main window for almost no room of its own, so opening
it never squeezes the docks or grows the window past the screen (issue 10); where the tab is smaller than the
panel's own minimum, it scrolls.

    [Local model ▾] [Add model file…] [Add model folder…]
    device runs X · local Y
    [Compare now] [Continuous] [every N frames] [keep F1 < 0.90]      [Replay saved frames…] [Export hard frames…]
    (message)
    legend                                             | Agreement (this frame, this run)
    agreement overlay                                  | Latency per stage
    device view          | local view                  | Disagreements in this frame / Hard frames
    F1 over time, threshold line
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.compare.worker import LibraryListing, SessionOpened
from edge_console.client.untrusted_text import escaped, visible_text
from edge_console.console.compare.agreement_chart import AgreementChart
from edge_console.console.compare.frame_view import ComparedFrameView, ViewMode
from edge_console.console.compare.overlay_painter import STYLES, Agreement, AgreementLegend, ComparedBox
from edge_console.console.compare.stats_view import AgreementStats, LatencyStats
from edge_console.core.detection.comparison import FrameComparison

DEFAULT_THRESHOLD = 0.9
NARROW_PX = 1000  # narrower than this, the panel stacks (see _fit_width)
SIDE_MIN_WIDTH = 340
SIDE_MIN_HEIGHT_NARROW = 420
NARROW_MIN_HEIGHT = 1100
OPENING_TEXT = "Connecting to the device and loading the local model…"
NO_MODEL_TEXT = "no local model loaded"
RELEASE_PREFIX = "Release: "  # picker items that are the model inside an imported, verified release
ERROR_STYLE = "background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0; border-radius: 3px; padding: 4px;"
NOTICE_STYLE = "background: #e8f4ea; color: #1e4620; border: 1px solid #b7dfbb; border-radius: 3px; padding: 4px;"


class _ContentLayout(QVBoxLayout):
    """The scrolled content's layout. It says it has no height-for-width (its wrapping labels would say so), so the
    scroll area fits the content to the tab, down to its minimum, instead of growing it to its preferred height
    for the tab's width, which would push the F1 chart out of view."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return False


def _list_caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: bold;")
    return label


class ComparePanelLayout(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_box = QComboBox(minimumContentsLength=18,
                                   sizeAdjustPolicy=QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setToolTip("The model run on this laptop. Default: the library's copy of the device's own "
                                  "model; pick another to preview a candidate against what the device runs.")
        self.model_box.setPlaceholderText(NO_MODEL_TEXT)  # shown while no model is loaded: never a model not in use
        self.release_models: dict[str, str] = {}  # model file -> release label (set_release_models)
        self.add_file_button = QToolButton(text="Add model file…")
        self.add_folder_button = QToolButton(text="Add model folder…", toolTip="A folder of .onnx files, e.g. a USB stick")
        self.setup_label = QLabel(wordWrap=True)
        self.setup_label.setTextFormat(Qt.TextFormat.RichText)  # our markup; every word from the device is escaped

        self.compare_button = QPushButton("Compare now", toolTip="Fetch the device's newest frame and compare it")
        self.continuous_button = QToolButton(text="Continuous", checkable=True,
                                             toolTip="Compare in the background, frame after frame, until stopped")
        self.every_box = QSpinBox(minimum=1, maximum=100, value=1, prefix="every ", suffix=" frame(s)")
        self.every_box.setToolTip("In continuous mode, compare every Nth frame the device infers")
        self.threshold_box = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2,
                                            value=DEFAULT_THRESHOLD, prefix="keep frames with F1 < ")
        self.threshold_box.setToolTip("Frames whose F1 falls below this are kept as hard frames "
                                      "(1.00 keeps every frame with any disagreement)")
        self.replay_button = QToolButton(text="Replay saved frames…",
                                         toolTip="Compare frames saved by `edge-console compare --save-frames DIR`")
        self.export_button = QToolButton(text="Export hard frames…",
                                         toolTip="Write the hard frames as a YOLO dataset labelled by the local model")
        self.busy_label = QLabel()
        self.busy_label.setStyleSheet("color: #555;")
        # What it says ("fetching the next frame…") may be cut on a narrow tab; it never widens the panel past it.
        self.busy_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)  # messages may quote what a device sent
        self.message_label.hide()
        self.message_is_error = False

        self.legend = AgreementLegend()
        self.overlay_caption = QLabel()  # above the picture, not on it: it would hide boxes
        self.overlay_caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.overlay_view = ComparedFrameView(ViewMode.OVERLAY)
        self.overlay_view.placeholder = OPENING_TEXT
        self.device_view = ComparedFrameView(ViewMode.DEVICE)
        self.local_view = ComparedFrameView(ViewMode.LOCAL)
        self.agreement = AgreementStats()
        self.latency = LatencyStats()
        self.disagreement_list = QListWidget(wordWrap=True)
        self.disagreement_list.setToolTip("Click one to highlight it on the overlay")
        self.hard_list = QListWidget()
        self.hard_list.setToolTip("Frames below the threshold, newest first; click one to show it")
        self.hard_title = _list_caption("Hard frames: none yet")
        self.follow_button = QToolButton(text="Back to live", toolTip="Show the newest comparison again")
        self.follow_button.hide()
        self.chart = AgreementChart(DEFAULT_THRESHOLD)
        self._arrange()

    def _arrange(self) -> None:
        model_bar = QHBoxLayout()
        model_bar.addWidget(QLabel("Local model"))
        for widget in (self.model_box, self.add_file_button, self.add_folder_button):
            model_bar.addWidget(widget)
        model_bar.addStretch(1)  # the set-up sentence gets a row of its own: beside the picker it was squeezed

        action_bar = QHBoxLayout()
        for widget in (self.compare_button, self.continuous_button, self.every_box, self.threshold_box,
                       self.busy_label):
            action_bar.addWidget(widget)
        action_bar.addStretch(1)
        self._file_bar = QHBoxLayout()  # replay / export: at the end of the action bar, or a row of their own
        self._file_bar.addStretch(1)
        self._action_bar = action_bar
        for widget in (self.replay_button, self.export_button):
            action_bar.addWidget(widget)

        side_by_side = QSplitter(Qt.Orientation.Horizontal)
        side_by_side.addWidget(self.device_view)
        side_by_side.addWidget(self.local_view)
        views = QSplitter(Qt.Orientation.Vertical)
        overlay_box = QWidget()
        overlay_layout = QVBoxLayout(overlay_box)
        overlay_layout.setContentsMargins(0, 0, 0, 0)
        overlay_layout.setSpacing(2)
        caption_row = QHBoxLayout()  # its own row: next to the legend, a long caption would squeeze the legend
        caption_row.addWidget(self.overlay_caption, 1)
        caption_row.addWidget(self.follow_button)
        overlay_layout.addWidget(self.legend)
        overlay_layout.addLayout(caption_row)
        overlay_layout.addWidget(self.overlay_view, 1)
        views.addWidget(overlay_box)
        views.addWidget(side_by_side)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 2)
        views.setSizes([600, 330])  # proportions: the splitter scales them to the space there is

        lists = QTabWidget(documentMode=True)
        disagreements = QWidget()
        d_layout = QVBoxLayout(disagreements)
        d_layout.setContentsMargins(0, 2, 0, 0)
        d_layout.addWidget(self.disagreement_list)
        hard = QWidget()
        h_layout = QVBoxLayout(hard)
        h_layout.setContentsMargins(0, 2, 0, 0)
        h_layout.addWidget(self.hard_title)
        h_layout.addWidget(self.hard_list)
        lists.addTab(disagreements, "Disagreements")
        lists.addTab(hard, "Hard frames")
        lists.setTabToolTip(0, "The boxes of the shown frame on which device and local model disagree")
        lists.tabBar().setElideMode(Qt.TextElideMode.ElideNone)  # "Hard frames (121)" whole, never "Hard fr…"
        lists.tabBar().setExpanding(False)
        self.lists_tabs = lists

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.agreement)
        side_layout.addWidget(self.latency)
        side_layout.addWidget(lists, 1)
        side.setMinimumWidth(SIDE_MIN_WIDTH)

        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(views)
        upper.addWidget(side)
        upper.setStretchFactor(0, 3)
        upper.setStretchFactor(1, 1)
        upper.setSizes([1000, 400])
        self._upper, self._side, self._narrow = upper, side, False
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(upper)
        main.addWidget(self.chart)
        main.setStretchFactor(0, 4)
        main.setStretchFactor(1, 1)
        main.setSizes([700, 170])
        self.chart.setMinimumHeight(120)

        content = QWidget()
        layout = _ContentLayout(content)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addLayout(model_bar)
        layout.addWidget(self.setup_label)
        layout.addLayout(action_bar)
        layout.addLayout(self._file_bar)
        layout.addWidget(self.message_label)
        layout.addWidget(main, 1)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_width(self.width())

    def _fit_width(self, width: int) -> None:
        """Below NARROW_PX (a tab between the Devices and Details docks), the figures go under the pictures and the
        file buttons to a row of their own, instead of off the right edge behind the Details dock."""
        narrow = width < NARROW_PX
        if narrow == self._narrow:
            return
        self._narrow = narrow
        target = self._file_bar if narrow else self._action_bar
        for widget in (self.replay_button, self.export_button):
            target.addWidget(widget)
        self._upper.setOrientation(Qt.Orientation.Vertical if narrow else Qt.Orientation.Horizontal)
        self._side.setMinimumWidth(0 if narrow else SIDE_MIN_WIDTH)
        self._side.setMinimumHeight(SIDE_MIN_HEIGHT_NARROW if narrow else 0)
        self._upper.setSizes([2, 1] if narrow else [1000, 400])
        self.scroll.widget().setMinimumHeight(NARROW_MIN_HEIGHT if narrow else 0)  # scrolls down to the figures

    # -- what the behaviour half calls to show things -----------------------------------------------------------

    def set_release_models(self, releases: dict[str, str]) -> None:
        """The verified releases of the console's library, {model file: release label}: offered in the picker
        after the library's models, so any imported release can be previewed on this device's frames."""
        self.release_models = dict(releases)
        self.model_box.blockSignals(True)
        try:
            self._add_release_items()
        finally:
            self.model_box.blockSignals(False)

    def _add_release_items(self) -> None:
        none_chosen = self.model_box.currentIndex() < 0  # adding to an empty picker would choose the first
        for path, label in self.release_models.items():
            if self.model_box.findData(path) < 0:
                self.model_box.addItem(f"{RELEASE_PREFIX}{visible_text(label, 60)} — {Path(path).name}", path)
                self.model_box.setItemData(self.model_box.count() - 1, f"verified release {label}: {path}",
                                           Qt.ItemDataRole.ToolTipRole)
        kept = set(self.release_models)
        for i in reversed(range(self.model_box.count())):  # a release removed from the library goes too
            if self.model_box.itemText(i).startswith(RELEASE_PREFIX) and self.model_box.itemData(i) not in kept \
                    and i != self.model_box.currentIndex():
                self.model_box.removeItem(i)
        if none_chosen:
            self.model_box.setCurrentIndex(-1)

    def set_models(self, listing: LibraryListing | None, selected: Path | None, device_copy: Path | None) -> None:
        """Fill the model picker (when `listing` is given) and select `selected`, without emitting a choice."""
        self.model_box.blockSignals(True)
        try:
            if listing is not None:
                self.model_box.clear()
                for model in listing.models:
                    self.model_box.addItem(f"{model.label} — {model.path.name}", str(model.path))
                    self.model_box.setItemData(self.model_box.count() - 1, str(model.path),
                                               Qt.ItemDataRole.ToolTipRole)
                problems = "\n".join(f"{p.name}: {why}" for p, why in listing.problems.items())
                self.add_folder_button.setToolTip("A folder of .onnx files, e.g. a USB stick"
                                                  + (f"\n\nSkipped files:\n{problems}" if problems else ""))
            self._add_release_items()
            for i in range(self.model_box.count()):
                text = self.model_box.itemText(i).removesuffix("  (the device's model)")
                if device_copy is not None and self.model_box.itemData(i) == str(device_copy):
                    text += "  (the device's model)"
                self.model_box.setItemText(i, text)
            if selected is not None:
                index = self.model_box.findData(str(selected))
                if index < 0:
                    self.model_box.addItem(f"{Path(selected).name}", str(selected))
                    index = self.model_box.count() - 1
                self.model_box.setCurrentIndex(index)
        finally:
            self.model_box.blockSignals(False)

    def describe_setup(self, device_name: str, opened: SessionOpened, device_model: dict | None = None) -> None:
        """`device_model`: what the device runs now (DeviceState.info, kept current by its session); the model it
        ran when the comparison was opened otherwise."""
        device_model = device_model or opened.info["model"]
        local = opened.model
        if device_model.get("sha256"):
            same = device_model["sha256"] == local.get("sha256")
        else:  # an agent that does not say its model's hash: name and version are all there is to go by
            same = (device_model.get("name"), device_model.get("version")) == (local["name"], local["version"])
        what = ("the same model" if same else
                "<span style='color:#b45309'><b>previewing a candidate</b></span>")
        self.setup_label.setText(
            f"<b>{escaped(device_name)}</b> runs {escaped(device_model.get('name'))} "
            f"{escaped(device_model.get('version'))} · local: {escaped(local['name'])} {escaped(local['version'])} "
            f"on {html.escape(opened.provider.removesuffix('ExecutionProvider'))} · {what}")

    def describe_not_open(self, device_name: str, why: str) -> None:
        """The set-up line while nothing is compared: which device, and why not (no model, unreachable…)."""
        self.setup_label.setText(f"<b>{escaped(device_name)}</b> · <span style='color:#8a1c1c'>not comparing: "
                                 f"{escaped(why, 200)}</span>")
        self.model_box.setCurrentIndex(-1)  # the placeholder: no model is in use

    def show_frame(self, comparison: FrameComparison | None, boxes: list[ComparedBox],
                   opened: SessionOpened | None, pinned: bool = False, device_model: dict | None = None) -> None:
        if comparison is None:
            for view in (self.overlay_view, self.device_view, self.local_view):
                view.show_comparison(None, [], "")
            self.overlay_caption.clear()
            self.disagreement_list.clear()
            self.agreement.show_frame(None)
            self.latency.show_frame(None)
            return
        r = comparison.report
        self.overlay_view.show_comparison(comparison, boxes, "")
        self.overlay_caption.setTextFormat(Qt.TextFormat.RichText)  # numbers only: no word from the device
        self.overlay_caption.setText(f"{'Hard frame ' if pinned else ''}<b>#{comparison.seq}</b> · F1 {r.f1:.2f} · "
                                     f"{len(r.matched)} matched · {len(r.unmatched_a)} device only · "
                                     f"{len(r.unmatched_b)} local only · {len(r.class_mismatches)} class mismatch")
        device_model = device_model or (opened.info["model"] if opened else {})
        local_model = opened.model if opened else {}
        self.device_view.show_comparison(comparison, [], visible_text(
            f"Device: {device_model.get('name', '?')} {device_model.get('version', '')} · "
            f"{len(comparison.device)} boxes", 120))
        self.local_view.show_comparison(comparison, [], f"Laptop: {local_model.get('name', '?')} "
                                                        f"{local_model.get('version', '')} · "
                                                        f"{len(comparison.local)} boxes")
        self.disagreement_list.clear()
        for box in boxes:
            if box.kind is not Agreement.MATCHED:
                self.disagreement_list.addItem(box.describe())
                item = self.disagreement_list.item(self.disagreement_list.count() - 1)
                item.setForeground(STYLES[box.kind].color.darker(130))
        if not self.disagreement_list.count():
            self.disagreement_list.addItem("No disagreement: every box matched.")
            self.disagreement_list.item(0).setFlags(Qt.ItemFlag.NoItemFlags)
        frame = comparison.to_dict()
        self.agreement.show_frame(frame)
        self.latency.show_frame(frame)

    def update_hard_frames_title(self, kept: int, dropped: int) -> None:
        more = f" ({dropped} older ones dropped)" if dropped else ""
        self.hard_title.setText(f"Hard frames: {kept} kept{more}")
        self.lists_tabs.setTabText(1, f"Hard frames ({kept})")

    def show_error(self, message: str) -> None:
        self.show_notice(message, error=True)

    def show_notice(self, message: str, error: bool = False) -> None:
        self.message_is_error = error
        self.message_label.setStyleSheet(ERROR_STYLE if error else NOTICE_STYLE)
        self.message_label.setText(message)
        self.message_label.show()

    def clear_error(self) -> None:
        if self.message_is_error:
            self.message_label.hide()
            self.message_label.clear()
            self.message_is_error = False

    def set_busy(self, busy: bool, note: str) -> None:
        self.busy_label.setText("working…" if busy else note)
        self.busy_label.setToolTip(note)
