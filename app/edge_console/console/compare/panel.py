"""The Compare panel: one device's detections against a model run on this laptop, on the very same pixels.

A tab of the main window tied to its device. It shows the two results side by side and as one agreement overlay,
the agreement and latency numbers, the disagreements of the shown frame, F1 over time in continuous mode, and the
hard frames below a threshold, which it exports as a YOLO dataset. Fetching runs on the console's network loop
and inference on its task pool (`CompareWorker`), the export on the task pool too (`HardFrameExport`); results
come back on the GUI thread through the runtime's task manager.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QFileDialog, QListWidgetItem, QWidget

from edge_console.client.compare.hard_frames import HardFrames, file_stem
from edge_console.client.compare.worker import CompareWorker, LibraryListing, SessionOpened
from edge_console.client.fleet_trust import device_transport
from edge_console.client.runtime import ConsoleRuntime
from edge_console.console.compare.export_dialog import HardFrameExport
from edge_console.console.compare.overlay_painter import Agreement, ComparedBox, compared_boxes
from edge_console.console.compare.panel_layout import OPENING_TEXT, ComparePanelLayout
from edge_console.console.device_state import DeviceState
from edge_console.core.detection.comparison import FrameComparison, summarize
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.protocol import StreamHeader

RUN_WINDOW = 5000  # frames the run's totals pool over (image-less: a few kB each); older ones age out
REFRESH_MS = 250  # run totals and the chart are redrawn at most this often, not once per frame


class ComparePanel(ComparePanelLayout):
    def __init__(self, state: DeviceState, library: ModelLibrary, runtime: ConsoleRuntime,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.library = library
        self.runtime = runtime
        self.run = 0
        self.run_started = time.monotonic()
        self.run_frames: deque[FrameComparison] = deque(maxlen=RUN_WINDOW)
        self.run_count = 0
        self.hard_frames = HardFrames()
        self.shown: FrameComparison | None = None
        self.shown_at = 0.0  # monotonic: when the shown comparison arrived
        self.shown_boxes: list[ComparedBox] = []
        self.latest: FrameComparison | None = None
        self.pinned = False  # showing a hard frame the user picked, not the newest comparison
        self.opened: SessionOpened | None = None
        self.requested_model: Path | None = None  # None: the library's copy of the device's own model
        self.pending_jobs = 0
        self.export: HardFrameExport | None = None
        self._compare_after_open = True
        self._stats_dirty = False
        self._refresh_timer = QTimer(self, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh_stats)
        self._refresh_timer.start()
        self._connect_controls()

        self.worker: CompareWorker | None = None
        self._library = library
        self._closing = False
        self._waiting_for_trust = False
        self._described_model: object = None
        state.changed.connect(self._on_device_changed)
        self._start_when_trust_known()

    def _device_model(self) -> dict | None:
        """What the device runs now: its state's /v1/info, which its session reads again after every switch."""
        model = self.state.info.get("model")
        return model if isinstance(model, dict) and model.get("name") else None

    def _on_device_changed(self) -> None:
        """A rollout or a rollback switched the device's model: the labels say so at once."""
        model = self._device_model()
        if self.opened is None or self._closing or model == self._described_model:
            return
        self._described_model = model
        self.describe_setup(self.state.name, self.opened, model)
        if self.shown is not None:
            self._show(self.shown)

    def _start_when_trust_known(self) -> None:
        """Open the comparison once the device's session has said how it may be reached (pinned TLS, or lab mode);
        a panel opened right after the device was added waits for that answer (the state's `changed`) instead of
        calling it unpaired."""
        state, runtime = self.state, self.runtime
        if self._closing or self.worker is not None:
            return
        if state.address is not None and not state.trust and state.status == "connecting":
            if not self._waiting_for_trust:
                self._waiting_for_trust = True
                state.changed.connect(self._start_when_trust_known)
            return
        self._stop_waiting_for_trust()
        try:
            base_url, tls = device_transport(runtime, state)
        except LookupError as exc:  # no address yet, or not paired: nothing may be fetched from it
            self.show_error(f"{exc}.")
            self.describe_not_open(state.name, "not reachable yet" if state.address is None else "not paired")
        else:
            self.worker = CompareWorker(base_url, self._library, self, runtime.tasks, runtime.http, tls=tls)
            self._open(None)

    def _stop_waiting_for_trust(self) -> None:
        if self._waiting_for_trust:
            self._waiting_for_trust = False
            self.state.changed.disconnect(self._start_when_trust_known)

    def _connect_controls(self) -> None:
        self.model_box.activated.connect(lambda i: self.choose_model(Path(self.model_box.itemData(i))))
        self.add_file_button.clicked.connect(self._ask_model_file)
        self.add_folder_button.clicked.connect(self._ask_model_folder)
        self.compare_button.clicked.connect(self.compare_now)
        self.continuous_button.toggled.connect(self.set_continuous)
        self.every_box.valueChanged.connect(lambda _: self._restart_continuous())
        self.threshold_box.valueChanged.connect(self.chart.set_threshold)
        self.replay_button.clicked.connect(self._ask_replay_folder)
        self.export_button.clicked.connect(self._ask_export_folder)
        self.follow_button.clicked.connect(self.follow_live)
        self.disagreement_list.currentRowChanged.connect(self._highlight_disagreement)
        # A click shows the frame even when it is already the current item (after "Back to live"); the arrow keys
        # step through the list by changing the current item.
        self.hard_list.itemClicked.connect(self._show_hard_frame_item)
        self.hard_list.currentItemChanged.connect(lambda item, _previous: self._show_hard_frame_item(item))

    # -- requests ------------------------------------------------------------------------------------------------

    def _submit(self, request: str, *args: object) -> None:
        """Hand a request to the worker; the pending count shows the panel busy until the worker says done."""
        if self.worker is None:
            return
        self.pending_jobs += 1
        getattr(self.worker, request)(*args)
        self._update_busy()

    def _open(self, model_path: Path | None, add_to_library: bool = False) -> None:
        self.requested_model = model_path
        self.opened = None
        self.overlay_view.placeholder = OPENING_TEXT
        self._compare_after_open = True
        self._new_run()
        if add_to_library and model_path is not None:  # refused once, before it is tried as the model
            self._submit("switch_model", self.run, model_path, True)
        else:
            self._submit("open", self.run, model_path)

    def choose_model(self, path: Path, add_to_library: bool = False) -> None:
        """Compare against `path` from now on (a candidate such as parts-v2 while the device runs parts-v1). A model
        already in use stays until the new one has loaded: one that does not load is refused, said once, and the
        comparison goes on with the model it had."""
        if self.opened is not None and self.opened.model_path == path:
            return
        self.continuous_button.setChecked(False)
        if self.opened is None:
            self._open(path, add_to_library)
            return
        self._compare_after_open = True
        self._submit("switch_model", self.run, Path(path), add_to_library)

    def add_model_file(self, path: Path) -> None:
        self.choose_model(Path(path), add_to_library=True)

    def add_model_folder(self, folder: Path) -> None:
        self._submit("refresh_library", None, Path(folder))
        if self.opened is None:
            self._open(self.requested_model)  # the device's model may be on the stick just added

    def compare_now(self) -> None:
        self._submit("compare_once", self.run)

    def set_continuous(self, on: bool) -> None:
        if self.continuous_button.isChecked() != on:
            self.continuous_button.setChecked(on)  # comes back here through `toggled`
            return
        if self.worker is None:
            return
        if on:
            self._submit("start_continuous", self.run, self.every_box.value())
        else:
            self.worker.stop_continuous()
        self._update_busy()

    def _restart_continuous(self) -> None:
        if self.continuous_button.isChecked() and self.worker is not None:
            self._submit("start_continuous", self.run, self.every_box.value())

    def replay(self, source: Path | Sequence[tuple[StreamHeader, np.ndarray]]) -> None:
        """Compare a saved set (a folder of `.edgeframe` files, or frames at hand) as a run of its own."""
        self.continuous_button.setChecked(False)
        self._new_run()
        self._submit("replay", self.run, source)

    # -- what the worker reports (on the GUI thread) -----------------------------------------------------------

    def on_library(self, listing: LibraryListing) -> None:
        # Only a model in use is shown as chosen: until one is loaded the picker shows "no local model loaded".
        self.set_models(listing, self.opened.model_path if self.opened else None,
                        self.opened.device_copy if self.opened else None)
        if self.opened is None:
            self.model_box.setCurrentIndex(-1)

    def on_opened(self, opened: SessionOpened) -> None:
        if opened.run != self.run:
            return
        if self.opened is not None and self.opened.model_path != opened.model_path:
            self._new_run()  # another model: its results are a run of their own
        self.opened = opened
        self.clear_error()
        self.overlay_view.placeholder = "Fetching the device's newest frame…"
        self.set_models(None, opened.model_path, opened.device_copy)
        self.describe_setup(self.state.name, opened, self._device_model())
        if self._compare_after_open:
            self._compare_after_open = False
            self.compare_now()

    def on_compared(self, run: int, comparison: FrameComparison) -> None:
        if run != self.run:
            return  # from a run given up meanwhile (another model, a replay)
        self.clear_error()
        self.run_count += 1
        self.run_frames.append(dataclasses.replace(comparison, image=None))  # totals need no pixels
        self.chart.add_point(time.monotonic() - self.run_started, comparison.report.f1)
        if comparison.report.f1 < self.threshold_box.value():
            self._keep_hard_frame(comparison)
        self.latest = comparison
        if not self.pinned:
            self._show(comparison)
        self._stats_dirty = True

    def on_failed(self, run: int, message: str) -> None:
        if run not in (-1, self.run):
            return
        self.show_error(message)
        if self.opened is None and run == self.run:  # nothing is being compared: say so where the picture goes
            self.describe_not_open(self.state.name, message)
        if self.shown is None:
            self.overlay_view.placeholder = f"No comparison: {message}"
            self.overlay_view.update()

    def on_model_refused(self, run: int, path: Path, message: str) -> None:
        """A model picked (or added) did not load: the one in use stays, and the picker shows it again."""
        self._compare_after_open = False
        if self.opened is None:
            self.on_failed(run, message)
            return
        self.set_models(None, self.opened.model_path, self.opened.device_copy)
        self.show_error(f"{message} Still comparing against {self.opened.model_path.name}.")

    def on_continuous_ended(self, run: int, reason: str) -> None:
        if run != self.run:
            return
        self.continuous_button.setChecked(False)
        self.show_error(f"Continuous mode stopped: {reason}")
        if self.shown is not None and not self.pinned:  # the picture is the last frame compared, not a live one
            self.overlay_caption.setText(f"Stopped · last compared frame #{self.shown.seq}, "
                                         f"{time.monotonic() - self.shown_at:.0f} s ago")

    def on_job_done(self) -> None:
        self.pending_jobs = max(0, self.pending_jobs - 1)
        self._update_busy()

    # -- showing ---------------------------------------------------------------------------------------------------

    def _new_run(self) -> None:
        self.run += 1
        self.run_started = time.monotonic()
        self.run_frames.clear()
        self.run_count = 0
        self.hard_frames.clear()
        self.hard_list.clear()
        self.update_hard_frames_title(0, 0)
        self.chart.clear()
        self.latest = None
        self.pinned = False
        self.follow_button.hide()
        self._show(None)
        self._stats_dirty = True

    def _keep_hard_frame(self, comparison: FrameComparison) -> None:
        dropped = self.hard_frames.add(comparison)
        r = comparison.report
        item = QListWidgetItem(f"#{comparison.seq}  F1 {r.f1:.2f}  ({len(r.unmatched_a)} device only, "
                               f"{len(r.unmatched_b)} local only, {len(r.class_mismatches)} class)")
        item.setData(Qt.ItemDataRole.UserRole, comparison)
        self.hard_list.insertItem(0, item)  # newest first
        for _ in dropped:
            self.hard_list.takeItem(self.hard_list.count() - 1)
        self.update_hard_frames_title(len(self.hard_frames), self.hard_frames.dropped)

    def _show_hard_frame_item(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.show_hard_frame(item.data(Qt.ItemDataRole.UserRole))

    def show_hard_frame(self, comparison: FrameComparison | None) -> None:
        if comparison is None:
            return
        self.pinned = True
        self.follow_button.show()
        self._show(comparison)

    def follow_live(self) -> None:
        self.pinned = False
        self.follow_button.hide()
        self.hard_list.setCurrentRow(-1)
        self._show(self.latest)

    def _show(self, comparison: FrameComparison | None) -> None:
        self.shown = comparison
        self.shown_at = time.monotonic()
        self.shown_boxes = compared_boxes(comparison.report) if comparison is not None else []
        self.show_frame(comparison, self.shown_boxes, self.opened, pinned=self.pinned,
                        device_model=self._device_model())

    def _highlight_disagreement(self, row: int) -> None:
        disagreements = [b for b in self.shown_boxes if b.kind is not Agreement.MATCHED]
        self.overlay_view.set_highlighted(disagreements[row] if 0 <= row < len(disagreements) else None)

    def run_summary(self) -> dict | None:
        """The run's agreement exactly as `edge-console compare --json` computes it (`summarize`)."""
        return summarize(list(self.run_frames)) if self.run_frames else None

    def refresh_stats(self) -> None:
        if not self._stats_dirty:
            return
        self._stats_dirty = False
        summary = self.run_summary()
        kept = len(self.run_frames)
        note = f"{kept} frames" if kept == self.run_count else f"last {kept} of {self.run_count} frames"
        self.agreement.show_run(summary, note if kept else "")
        self.latency.show_run(summary)
        self.chart.refresh()

    def _update_busy(self) -> None:
        continuous = self.continuous_button.isChecked()
        self.compare_button.setEnabled(not continuous)  # it would wait behind the continuous loop
        self.set_busy(self.pending_jobs > 0 and not continuous,
                      f"continuous: every {self.every_box.value()} frame(s)" if continuous else "")

    # -- dialogs ------------------------------------------------------------------------------------------------

    def _ask_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a model file", "", "ONNX models (*.onnx);;All files (*)")
        if path:
            self.add_model_file(Path(path))

    def _ask_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder (for example a USB stick)")
        if folder:
            self.add_model_folder(Path(folder))

    def _ask_replay_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Replay saved frames (a folder of .edgeframe files)")
        if folder:
            self.replay(Path(folder))

    def _ask_export_folder(self) -> None:
        if not len(self.hard_frames):
            self.show_error("No hard frames to export yet: frames whose F1 is below the threshold are kept here.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Export hard frames into…")
        if folder:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.export_hard_frames(Path(folder) / f"hard-frames-{file_stem(self.state.name)}-{stamp}")

    def export_hard_frames(self, out_dir: Path) -> HardFrameExport | None:
        """Write the hard frames to `out_dir` (a new folder) as a YOLO dataset labelled by the local model."""
        if self.export is not None and not self.export.done:
            self.show_error("An export is already running.")
            return None
        classes = (self.opened.info["model"]["classes"] if self.opened else None) or []
        self.export = HardFrameExport(self.hard_frames.labelled(self.state.name), out_dir, classes,
                                      self.runtime.tasks, self)
        self.export.finished.connect(lambda ok, message: self.show_notice(message, error=not ok))
        return self.export.start()

    # -- life cycle ------------------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop continuous mode, release the device and the model, drop results still on their way; no waiting
        for an inference in flight (it finishes on its pool thread, and its result is dropped)."""
        self._refresh_timer.stop()
        self._closing = True
        self._stop_waiting_for_trust()
        if self.worker is not None:
            self.worker.close()
        if self.export is not None and not self.export.done:
            self.export.abandon()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)
