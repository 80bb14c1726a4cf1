"""Releases ▸ Library: the release files imported into this console, each verified on import as a device would.

    [Import release file…] [Import folder (USB)…] [Trust release authority…]        trusts root v1
    [==== verifying parts-2.0.0.edgerelease (1 of 3) ====] [Cancel]
    releases                 | parts 2.0.0 — verified
      parts 2.0.0  verified  | facts: model, signers, expiry, compatibility, golden set, budget
      parts 2.0.9  REFUSED   | [Remove…]                                 [Preview in Compare] [Push…]
                             | [Model card] [Golden set (24)]

A release that failed verification is listed in red with its reason; its Push button is disabled and says why.
Trusting an authority checks every refused release again (with the import's progress bar); each row updates.
Remove… (or Delete) removes the selected releases after a confirmation that names them; one a rollout still
needs stays, and the message says why. Everything a release says (names, card, classes) is shown as plain text or
as Markdown without HTML.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.releases.library import ReleaseEntry
from edge_console.client.tasks import Task
from edge_console.client.untrusted_text import escaped, plain_tooltip, visible_text
from edge_console.console.releases_ui.center import ReleaseCenter
from edge_console.console.releases_ui.golden_view import GoldenView, SafeCardView, card_text

REFUSED_COLOR = QColor("#b91c1c")
VERIFIED_COLOR = QColor("#166534")


def _row(key: str, value: object) -> str:
    return (f"<tr><td style='color:#666;padding-right:10px;white-space:nowrap'>{html.escape(key)}</td>"
            f"<td>{escaped(value, 400)}</td></tr>")


def describe_release(entry: ReleaseEntry) -> str:
    """The facts of a release as HTML in which every word of the release is escaped."""
    s = entry.summary
    model = s.get("model") if isinstance(s.get("model"), dict) else {}
    archs = ", ".join(map(str, s.get("architectures") or [])) or "any"
    providers = ", ".join(map(str, s.get("required_providers") or [])) or "any"
    budget = s.get("latency_budget_p95_ms")
    rows = [
        _row("model line", entry.line or "?"), _row("version", entry.version or "?"),
        _row("model", f"{model.get('name', '?')} {model.get('model_version', '')} · sha256 "
                      f"{str(model.get('sha256', ''))[:16]}…"),
        _row("classes", ", ".join(map(str, model.get("classes") or [])) or "?"),
        _row("signed by (key ids)", ", ".join(k[:16] for k in entry.signers) or "no signature found"),
        _row("expires", entry.expires.replace("T", " ")[:19] + " UTC" if entry.expires else "?"),
        _row("compatibility", f"architectures: {archs} · agent ≥ {s.get('min_agent_version', '0')} · "
                              f"providers: {providers}"),
        _row("golden set", f"{s.get('golden', len(entry.golden))} frames · must reach F1 ≥ {s.get('min_f1', '?')} "
                           f"at IoU {s.get('iou', '?')}"),
        _row("latency budget", f"p95 ≤ {budget} ms on the device" if budget else "none"),
        _row("bundle sha256", entry.sha256 or "?"),
        _row("imported", f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(entry.imported_at))} from "
                         f"{entry.source}"),
    ]
    if s.get("description"):
        rows.insert(2, _row("description", s["description"]))
    if entry.verified:
        status = "<span style='color:#166534;font-weight:bold'>verified</span>: signatures, expiry, every hash"
    else:
        status = (f"<span style='color:#b91c1c;font-weight:bold'>REFUSED</span>: {escaped(entry.problem, 600)}"
                  "<br>It cannot be pushed to any device.")
    return (f"<h3 style='margin:2px 0'>{escaped(entry.label, 120)}</h3><p style='margin:2px 0 6px 0'>{status}</p>"
            f"<table cellspacing=0>{''.join(rows)}</table>")


class LibraryView(QWidget):
    push_requested = Signal(object)  # ReleaseEntry
    preview_requested = Signal(object)  # ReleaseEntry: compare its model with the current device's frames

    def __init__(self, center: ReleaseCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.current: ReleaseEntry | None = None
        self._shown: tuple[str, bool] | None = None  # (id, verified) whose card and golden set are shown
        self._want: str | None = None  # the release to select at the next refresh (the one just imported)
        self._card_task: Task | None = None
        self.import_file_button = QPushButton("Import release file…")
        self.import_folder_button = QPushButton("Import folder (USB)…")
        self.trust_button = QPushButton("Trust release authority…")
        self.trust_button.setToolTip("Give the console the release authority's root.json: the same file its "
                                     "devices trust (edge-agent trust-root)")
        self.trust_label = QLabel()
        self.progress = QProgressBar(textVisible=True)
        self.cancel_button = QPushButton("Cancel")
        self.message = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # several to remove at once
        self.details = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setTextFormat(Qt.TextFormat.RichText)  # our markup; every word of the release is escaped
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.push_button = QPushButton("Push…")
        self.preview_button = QPushButton("Preview in Compare")
        self.preview_button.setToolTip("Run this release's model on the current device's live frames (Compare)")
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setToolTip("Delete the selected releases from the library (Delete); the files they were "
                                      "imported from are not touched")
        self.remove_action = QAction("Remove release", self.list, shortcut=QKeySequence(QKeySequence.StandardKey.Delete),
                                     shortcutContext=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.list.addAction(self.remove_action)
        self.card = SafeCardView()
        self.golden = GoldenView(center.tasks)
        self.detail_tabs = QTabWidget(documentMode=True)
        self.detail_tabs.addTab(self.card, "Model card")
        self.detail_tabs.addTab(self.golden, "Golden set")
        self._arrange()

        self.import_file_button.clicked.connect(self.ask_import_file)
        self.import_folder_button.clicked.connect(self.ask_import_folder)
        self.trust_button.clicked.connect(self.ask_trust)
        self.cancel_button.clicked.connect(center.cancel_import)
        self.list.currentItemChanged.connect(lambda item, _old: self.show_entry(
            center.entry(item.data(Qt.ItemDataRole.UserRole)) if item else None))
        self.push_button.clicked.connect(lambda: self.current and self.push_requested.emit(self.current))
        self.preview_button.clicked.connect(lambda: self.current and self.preview_requested.emit(self.current))
        self.remove_button.clicked.connect(self.ask_remove)
        self.remove_action.triggered.connect(self.ask_remove)
        self.list.itemSelectionChanged.connect(lambda: self.remove_button.setEnabled(bool(self.selected_entries())))
        center.entries_changed.connect(self.refresh)
        center.import_progress.connect(self._on_progress)
        center.import_finished.connect(self._on_imported)
        center.trust_changed.connect(self._say)
        center.removal_finished.connect(lambda text, refused: self._say(text, error=refused))
        self.refresh()

    def _arrange(self) -> None:
        bar = QHBoxLayout()
        for w in (self.import_file_button, self.import_folder_button, self.trust_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.trust_label)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()
        self.message.hide()
        actions = QHBoxLayout()
        actions.addWidget(self.remove_button)
        actions.addStretch(1)
        actions.addWidget(self.preview_button)
        actions.addWidget(self.push_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 0, 0, 0)
        right_layout.addWidget(self.details)
        right_layout.addLayout(actions)
        right_layout.addWidget(self.detail_tabs, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        split.setSizes([260, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addLayout(busy)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)

    # -- the list ---------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        center = self.center
        version = center.trusted_root
        self.trust_label.setText(f"Trusts release authority: root v{version}" if version else
                                 "Trusts no release authority yet: imports cannot verify")
        self.trust_label.setStyleSheet("" if version else "color:#b45309;font-weight:bold")
        keep, self._want = self._want or (self.current.id if self.current else None), None
        self.list.blockSignals(True)
        self.list.clear()
        for entry in sorted(center.entries, key=lambda e: e.imported_at, reverse=True):
            item = QListWidgetItem(f"{visible_text(entry.label, 60)}  ·  "
                                   f"{'verified' if entry.verified else 'REFUSED'}")
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            item.setForeground(VERIFIED_COLOR if entry.verified else REFUSED_COLOR)
            item.setToolTip(plain_tooltip([entry.label, "verified" if entry.verified else entry.problem]))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if not center.entries:
            self.show_entry(None)
            self.remove_button.setEnabled(False)
            return
        ids = [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]
        self.select(keep if keep in ids else ids[0])

    def select(self, entry_id: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == entry_id:
                self.list.setCurrentRow(i)
                self.show_entry(self.center.entry(entry_id))
                return

    def show_entry(self, entry: ReleaseEntry | None) -> None:
        key = (entry.id, entry.verified) if entry else None
        changed, self._shown = key != self._shown, key
        self.current = entry
        if entry is None:
            self.details.setText("<p style='color:#555'>No release imported yet. Import a release file "
                                 "(<b>.edgerelease</b>) or a USB stick's folder; each is verified as a device "
                                 "would verify it.</p>")
            self.push_button.setEnabled(False)
            self.push_button.setToolTip("")
            self.preview_button.setEnabled(False)
            self.card.clear()
            self.golden.show_release(None)
            return
        self.details.setText(describe_release(entry))
        self.push_button.setEnabled(entry.verified)
        self.push_button.setToolTip(plain_tooltip(["Push to devices: canaries first, then batches"]
                                                  if entry.verified else ["Cannot be pushed:", entry.problem]))
        self.preview_button.setEnabled(entry.verified)
        self.detail_tabs.setTabText(1, f"Golden set ({len(entry.golden)})")
        if changed:
            self._load_card(entry)
            self.golden.show_release(entry.golden if entry.verified else None)

    def _load_card(self, entry: ReleaseEntry) -> None:
        if self._card_task is not None:
            self._card_task.abandon()
        if not entry.verified:
            self.card.setPlainText("Not shown: this release did not verify, so its model card is anyone's text.")
            return
        self.card.setPlainText("Reading the model card…")
        path = entry.card_path
        self._card_task = self.center.tasks.run(
            lambda _t: card_text(path), on_done=self.card.show_markdown,
            on_failed=lambda exc: self.card.setPlainText(f"No model card: {exc}"))

    # -- removing -------------------------------------------------------------------------------------------------------
    def selected_entries(self) -> list[ReleaseEntry]:
        """The releases selected in the list (the current one when none is)."""
        ids = [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]
        if not ids and self.current is not None:
            ids = [self.current.id]
        return [e for e in (self.center.entry(i) for i in ids) if e is not None]

    def ask_remove(self) -> None:
        """Remove the selected releases after a confirmation that names them; say why any is kept."""
        entries = self.selected_entries()
        if not entries:
            return
        refusals = self.center.removal_refusals(entries)
        removable = [e for e in entries if e.id not in refusals]
        if not removable:
            self._say(" ".join(refusals.values()), error=True)
            return
        names = [f"{visible_text(e.label, 60)} ({'verified' if e.verified else 'refused'})" for e in removable]
        box = QMessageBox(QMessageBox.Icon.Question, "Remove from the library",
                          f"Remove {_listing(names)} from the release library?", parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # the names are the releases' own words
        kept = "\n\nNot removed: " + " ".join(refusals.values()) if refusals else ""
        box.setInformativeText(f"{'Their' if len(removable) > 1 else 'Its'} files in the library are deleted and "
                               "the removal is written in the audit log. The release files on the USB stick or disk "
                               f"are not touched: import them again to bring a release back.{kept}")
        remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.exec()
        if box.clickedButton() is remove:
            self.center.remove(entries)  # the kept ones too: the message after it says again why they stay

    # -- importing and trust ----------------------------------------------------------------------------------------
    def ask_import_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import release files", "",
                                                "Releases (*.edgerelease);;All files (*)")
        if paths:
            self.import_paths([Path(p) for p in paths])

    def ask_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import every release in a folder (for example a USB stick)")
        if folder:
            self.import_paths([Path(folder)])

    def ask_trust(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Trust a release authority: its root.json", "",
                                              "Root metadata (*.json);;All files (*)")
        if path:
            self.center.trust_root(Path(path))

    def import_paths(self, paths: list[Path]) -> Task | None:
        task = self.center.import_paths(paths)
        if task is not None:
            self.progress.setRange(0, 0)  # busy until the job counts its files
            self.progress.setFormat("Verifying…")
            self.progress.show()
            self.cancel_button.show()
            self.message.hide()
        return task

    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress.show()  # also for refused releases checked again after a trust, which the center starts
        self.cancel_button.show()
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"Verifying {visible_text(name, 80)} ({done + 1} of {total})" if name else
                                f"{done} of {total} verified")

    def _on_imported(self, entry: ReleaseEntry | None, summary: str, went_wrong: bool) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self._say(summary, error=went_wrong)
        if entry is not None:
            self._want = entry.id  # the center reloads the list next: show what was just imported

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("background:#fdecea;color:#8a1c1c;padding:4px" if error else
                                   "background:#e8f4ea;color:#1e4620;padding:4px")
        self.message.setText(text)
        self.message.show()


def _listing(names: list[str], most: int = 8) -> str:
    """"a", "a and b", "a, b and c"; past `most` names, how many more."""
    if len(names) > most:
        names = [*names[:most], f"{len(names) - most} more"]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
