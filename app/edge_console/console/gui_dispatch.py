"""The one way background work returns to the GUI thread (napari's lesson: one helper, not one per feature).

Network callbacks, store results and process readers all call `GuiDispatcher.post(fn, *args)` from whatever
thread they run on; `fn` then runs on the GUI thread through a queued signal. One mechanism, one place to look.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot


class GuiDispatcher(QObject):
    """Create it on the GUI thread; `post` is safe from any thread."""

    _call = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._closed = False
        self._call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self._closed:
            self._call.emit(functools.partial(fn, *args) if args else fn)

    def close(self) -> None:
        """Drop calls posted from now on: the objects they would touch are being torn down."""
        self._closed = True

    @Slot(object)
    def _run(self, fn: Callable[[], Any]) -> None:
        if not self._closed:
            fn()
