"""Guards against known defects of the Qt binding that would otherwise crash the console hours into a shift.

PySide6 6.12.0's `SignalInstance.emit()` returns `True` without taking a reference. Every Python-side emit (ours,
pyqtgraph's) then drops one reference to `True`; on Python 3.11, where `True` is not immortal, the interpreter
aborts with "bool_dealloc: deallocating True or False" once the count reaches zero (seconds into a 30 fps grid).
PySide6-Essentials < 6.12 does not have the defect; the guard keeps a console on the bad release alive. The probe
emits signals and reads reference counts, so it runs only on the affected release, not on every start.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)
AFFECTED_VERSIONS = frozenset({"6.12.0"})  # PySide6 releases known to drop the reference


class _Probe(QObject):
    fired = Signal(int)


def signal_emit_drops_true_references() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(64):
        probe.fired.emit(1)
    return sys.getrefcount(True) - before <= -32


def guard_signal_emit_refcount(version: str = pyside_version) -> str | None:
    """On an affected release, confirm the defect and, on Python < 3.12, pad True's reference count far beyond any
    session's emits. Returns a warning for the user, or None when the binding is sound (or not affected)."""
    if version not in AFFECTED_VERSIONS or not signal_emit_drops_true_references():
        return None
    if sys.version_info < (3, 12):
        # ob_refcnt is the first field of every object; 2**40 emits is centuries at thousands per second.
        ctypes.c_ssize_t.from_address(id(True)).value += 1 << 40
    message = (f"PySide6 {version} drops a reference on every signal emit; the console works around it, "
               "but install PySide6-Essentials<6.12 (pip install 'PySide6-Essentials<6.12').")
    log.warning(message)
    return message
