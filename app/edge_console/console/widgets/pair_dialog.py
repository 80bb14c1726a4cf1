"""Pairing this console with a device: type the one-time code the device shows; the exchange runs in the
background (net/pairing_client.py: the code never crosses the network) and, when it succeeds, the fleet pins the
device's certificate and reconnects to it with this console's role."""

from __future__ import annotations

import socket
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.net.pairing_client import PairingResult, pair
from edge_console.client.releases.audit_merge import console_audit
from edge_console.client.untrusted_text import visible_text
from edge_console.console.device_state import DeviceState
from edge_console.console.fleet import Fleet
from edge_console.console.widgets.text_fit import grow_to_fit
from edge_console.core.trust.pairing_protocol import normalise_code
from edge_console.core.trust.tls_identity import short_fingerprint

HOW = ("On the device, run <b>edge-agent pair --role operator</b> (or viewer, admin). It prints an 8-digit code "
       "valid for 10 minutes. Type it here: the code never crosses the network. After five wrong codes from this "
       "computer the device refuses it here; then open a new code on the device.")


class PairDialog(QDialog):
    def __init__(self, fleet: Fleet, state: DeviceState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fleet, self.state = fleet, state
        self.result_: PairingResult | None = None
        self.setWindowTitle(f"Pair with {visible_text(state.name, 60)}")
        how = QLabel(HOW, wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.code = QLineEdit(placeholderText="1234-5678", maxLength=12)
        self.code.setAccessibleName("Pairing code")
        self.status = QLabel(wordWrap=True, textFormat=Qt.TextFormat.PlainText)
        fingerprint = str(state.info.get("fingerprint") or state.txt.get("fp") or "")
        form = QFormLayout()
        form.addRow("Device", QLabel(visible_text(f"{state.name} at {state.address}", 120),
                                     textFormat=Qt.TextFormat.PlainText))
        if fingerprint:
            form.addRow("Its certificate", QLabel(short_fingerprint(fingerprint) if len(fingerprint) == 64
                                                  else visible_text(fingerprint, 40),
                                                  textFormat=Qt.TextFormat.PlainText))
        form.addRow("Code", self.code)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.pair_button = self.buttons.addButton("Pair", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(how)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(500, 0)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        grow_to_fit(self)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        grow_to_fit(self)  # a long refusal wraps onto more lines: the dialog grows, nothing is clipped

    def start(self) -> None:
        try:
            code = normalise_code(self.code.text())
        except ValueError as exc:
            self._say(str(exc))
            return
        if self.state.address is None:
            self._say("This device has no known address yet.")
            return
        self.pair_button.setEnabled(False)
        self._say("Pairing…")
        address, identity = self.state.address, self.fleet.runtime.trust.identity
        self.fleet.runtime.tasks.run_async(lambda _t: pair(address, code, identity, socket.gethostname()),
                                           on_done=self._paired, on_failed=self._failed)

    def _paired(self, result: PairingResult) -> None:
        self.result_ = result
        self.fleet.pin_device(result.device_id, result.certificate_pem, result.role, str(self.state.address))
        data_dir = Path(self.fleet.database).parent  # the console's one audit log, beside its database (as the
        self.fleet.runtime.tasks.run(lambda _t: console_audit(data_dir).append(  # release centre writes it)
            f"console {socket.gethostname()}", "paired", device=result.device_id, role=result.role,
            fingerprint=result.fingerprint[:16]))
        self._say(f"Paired as {result.role}.")
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.pair_button.setEnabled(True)
        self._say(f"Not paired: {exc}")


def open_pair_dialog(parent: QWidget, fleet: Fleet, state: DeviceState) -> PairDialog:
    dialog = PairDialog(fleet, state, parent)
    dialog.open()
    return dialog
