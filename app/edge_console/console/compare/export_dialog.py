"""Export hard frames as a YOLO dataset on a thread of its own, behind a progress dialog that can cancel.

`export_yolo_dataset` builds the dataset in a hidden sibling folder and renames it into place only when complete,
so Cancel (or a full disk) leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from edge_console.core.yolo_dataset import ExportCancelled, LabelledFrame, export_yolo_dataset

from ..gui_dispatch import GuiDispatcher


class HardFrameExport(QObject):
    finished = Signal(bool, str)  # written?, the message for the user

    def __init__(self, frames: Sequence[LabelledFrame], out_dir: Path, class_names: Sequence[str],
                 parent: QWidget) -> None:
        super().__init__(parent)
        self.frames = list(frames)
        self.out_dir = out_dir
        self.class_names = list(class_names)
        self.done = False
        self.written = False
        self._abandoned = False
        self._cancel = threading.Event()
        self._dispatcher = GuiDispatcher(self)
        self._thread = threading.Thread(target=self._write, name="hard-frame-export")
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
        QTimer.singleShot(0, self, self._start_thread)
        return self

    def _start_thread(self) -> None:
        if not self._abandoned:
            self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        self.dialog.setLabelText("Cancelling; removing what was written…")

    def _write(self) -> None:
        post = self._dispatcher.post
        try:
            out = export_yolo_dataset(self.frames, self.out_dir, self.class_names,
                                      progress=lambda i, n: post(self.dialog.setValue, i), cancel=self._cancel)
            post(self._finish, True, f"Exported {len(self.frames)} hard frames to {out} (YOLO format: images/train, "
                                     "labels/train, data.yaml).")
        except ExportCancelled:
            post(self._finish, False, "Export cancelled; nothing was written.")
        except Exception as exc:  # a full disk, a folder that appeared meanwhile: say so; nothing half-written
            post(self._finish, False, f"Export failed, nothing was written: {exc}")

    def _finish(self, written: bool, message: str) -> None:
        self._thread.join()  # it has already returned: posting this was its last act
        self.done, self.written = True, written
        self.dialog.canceled.disconnect(self.cancel)  # closing the dialog emits canceled
        self.dialog.close()
        self.dialog.deleteLater()
        self.finished.emit(written, message)

    def abandon(self) -> None:
        """The panel is closing: stop writing (nothing is left behind) and let the thread end by itself."""
        self._abandoned = True
        self._cancel.set()
        self._dispatcher.close()
        if self._thread.is_alive():
            self._thread.join(10)
