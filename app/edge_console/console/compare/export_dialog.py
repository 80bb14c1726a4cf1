"""Export hard frames as a YOLO dataset on the console's task pool, behind a progress dialog that can cancel.

`export_yolo_dataset` builds the dataset in a hidden sibling folder and renames it into place only when complete,
so Cancel (or a full disk) leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from edge_console.client.tasks import Task, TaskCancelled, TaskManager
from edge_console.core.detection.yolo_dataset import ExportCancelled, LabelledFrame, export_yolo_dataset


class HardFrameExport(QObject):
    finished = Signal(bool, str)  # written?, the message for the user

    def __init__(self, frames: Sequence[LabelledFrame], out_dir: Path, class_names: Sequence[str],
                 tasks: TaskManager, parent: QWidget) -> None:
        super().__init__(parent)
        self.frames = list(frames)
        self.out_dir = out_dir
        self.class_names = list(class_names)
        self.done = False
        self.written = False
        self._tasks = tasks
        self._task: Task | None = None
        self._abandoned = False
        self._cancelled_before_start = False
        self.dialog = QProgressDialog(f"Writing {len(self.frames)} hard frames to\n{out_dir}", "Cancel", 0,
                                      len(self.frames), parent)
        self.dialog.setWindowTitle("Export hard frames")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(0)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self.cancel)

    def start(self) -> HardFrameExport:
        self.dialog.show()
        # The disk work starts once the dialog is up, so Cancel is there before the first file is written.
        QTimer.singleShot(0, self, self._start_job)
        return self

    def _start_job(self) -> None:
        if self._abandoned:
            return
        if self._cancelled_before_start:
            self._finish(False, "Export cancelled; nothing was written.")
            return
        self._task = self._tasks.run(self._write, on_done=lambda out: self._finish(
                True, f"Exported {len(self.frames)} hard frames to {out} (YOLO format: images/train, "
                      "labels/train, data.yaml)."), on_failed=self._failed, on_progress=self._progress)

    def _write(self, task: Task) -> Path:  # on a pool thread
        return export_yolo_dataset(self.frames, self.out_dir, self.class_names,
                                   progress=task.report_progress, cancel=task.cancel_event)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        else:
            self._cancelled_before_start = True
        self.dialog.setLabelText("Cancelling; removing what was written…")

    def _progress(self, done: int, _total: int) -> None:
        self.dialog.setValue(done)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, ExportCancelled | TaskCancelled):
            self._finish(False, "Export cancelled; nothing was written.")
        else:  # a full disk, a folder that appeared meanwhile: say so; nothing half-written
            self._finish(False, f"Export failed, nothing was written: {exc}")

    def _finish(self, written: bool, message: str) -> None:
        self.done, self.written = True, written
        self.dialog.canceled.disconnect(self.cancel)  # closing the dialog emits canceled
        self.dialog.close()
        self.dialog.deleteLater()
        self.finished.emit(written, message)

    def abandon(self) -> None:
        """The panel is closing: stop writing (nothing is left behind) and report nothing; the job ends by itself
        on its pool thread, which the runtime joins when the console closes."""
        self._abandoned = True
        if self._task is not None:
            self._task.abandon()
