"""Adding a device by address, and the explanation of why a device may not appear by itself."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QMessageBox, QVBoxLayout, QWidget

from edge_console.client.net.addresses import DeviceAddress, parse_host_port
from edge_console.console.widgets.text_fit import grow_to_fit

WHY_NOT_LISTED_HTML = """
<p>Devices announce themselves with mDNS (<code>_edgeinfer._tcp</code>). A device may not appear when:</p>
<ul>
<li><b>Multicast is blocked</b> — managed switches, Wi-Fi client isolation and many plant networks drop mDNS
(UDP 5353 to 224.0.0.251). The device still works: add it by address.</li>
<li><b>It is on another subnet or VLAN</b> — mDNS does not cross routers. Add it by address if the laptop can
route to it.</li>
<li><b>A firewall</b> on the laptop or the device blocks UDP 5353 (discovery) or the device's API port (TCP,
8470 by default).</li>
<li><b>The console browses other interfaces</b> — start it with <code>--browse-interface ADDR</code> for the
network card that faces the devices.</li>
<li>The device's agent is not running, or it runs with <code>--no-advertise</code>.</li>
</ul>
<p>Devices seen before stay in the list, greyed, with the time they were last seen.</p>
"""


class AddDeviceDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add device by address")
        self.address: DeviceAddress | None = None
        self.edit = QLineEdit(placeholderText="host:port, e.g. 192.168.10.21:8470")
        self.error = QLabel(styleSheet="color: #c62828")
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # it quotes what was typed
        self.error.setWordWrap(True)
        why = QLabel(WHY_NOT_LISTED_HTML, wordWrap=True)
        why.setTextFormat(Qt.TextFormat.RichText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Address of the device's agent:"))
        layout.addWidget(self.edit)
        layout.addWidget(self.error)
        layout.addWidget(why)
        layout.addWidget(buttons)
        self.resize(560, 0)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        grow_to_fit(self)

    def _accept_if_valid(self) -> None:
        try:
            self.address = parse_host_port(self.edit.text())
        except ValueError as exc:
            self.error.setText(str(exc))
            grow_to_fit(self)
            return
        self.accept()


def show_why_not_listed(parent: QWidget | None) -> None:
    box = QMessageBox(parent)
    box.setWindowTitle("Why a device may not appear")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(WHY_NOT_LISTED_HTML)
    box.exec()
