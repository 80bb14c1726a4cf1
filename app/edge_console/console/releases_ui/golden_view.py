"""A release's golden set as thumbnails, each with the boxes the model must reproduce drawn by the preview's own
painter (`widgets.overlay.paint_detections`, class colours), and its model card as safe rich text.

Thumbnails are decoded, scaled and painted on the task pool (QImage and QPainter work off the GUI thread); the
image's header is read first, so a picture that declares an absurd size is refused before anything is decoded.
Only a verified release's files are shown: their bytes are the ones its signed manifest hashes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QIcon, QImage, QImageReader, QPainter, QPixmap, QTextDocument, QTransform
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QTextBrowser, QWidget

from edge_console.client.tasks import Task, TaskManager
from edge_console.client.untrusted_text import plain_tooltip, visible_char
from edge_console.console.widgets.overlay import paint_detections
from edge_console.core.detection.record import Detection

THUMB = QSize(208, 156)
MAX_GOLDEN_SHOWN = 48  # a golden set is a few dozen frames; more would only slow the page down
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_CARD_BYTES = 256 * 1024


def golden_thumbnail(path: Path, detections: list[dict], size: QSize = THUMB, labels: bool = False) -> QImage:
    """The image scaled into `size` with its expected boxes drawn; ValueError for an image the console refuses."""
    reader = QImageReader(str(path))
    full = reader.size()  # from the header: nothing decoded yet
    if not full.isValid() or full.width() * full.height() > MAX_IMAGE_PIXELS:
        raise ValueError(f"{path.name}: not an image of a size the console shows ({full.width()}x{full.height()})")
    scaled = full.scaled(size, Qt.AspectRatioMode.KeepAspectRatio)
    reader.setScaledSize(scaled)
    image = reader.read()
    if image.isNull():
        raise ValueError(f"{path.name}: {reader.errorString()}")
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    boxes = []
    for d in detections:
        try:
            boxes.append(Detection.from_dict(d))
        except ValueError:
            continue  # a verified manifest has none of these; drawn or not, the rest still shows
    painter = QPainter(image)
    try:
        to_thumb = QTransform.fromScale(scaled.width() / full.width(), scaled.height() / full.height())
        paint_detections(painter, boxes, to_thumb, labels=labels)
    finally:
        painter.end()
    return image


def card_text(path: Path) -> str:
    """The model card as Markdown source, with control and bidi characters made visible (newlines and tabs kept)."""
    data = path.read_bytes()[:MAX_CARD_BYTES]
    text = data.decode("utf-8", errors="replace")
    return "".join(ch if ch in "\n\t" or (ord(ch) >= 0x20 and ch not in _INVISIBLE) else visible_char(ch)
                   for ch in text)


_INVISIBLE = frozenset("\x7f\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")


class SafeCardView(QTextBrowser):
    """Markdown rendered without its HTML, links that go nowhere and images that are never loaded: a model card
    is the release author's text, and may be anyone's once a release fails to verify."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)

    def show_markdown(self, text: str) -> None:
        features = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
                    | QTextDocument.MarkdownFeature.MarkdownNoHTML)
        self.document().setMarkdown(text, features)

    def loadResource(self, kind: int, name: QUrl) -> object:  # noqa: N802 - Qt override
        return None  # no file, no URL: an image reference in a card shows as nothing


class GoldenView(QListWidget):
    """Thumbnails of one release's golden frames; `show_release` replaces them (earlier loads are dropped)."""

    def __init__(self, tasks: TaskManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(THUMB)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setSpacing(6)
        self.setUniformItemSizes(True)
        self.images: list[QImage] = []  # what is shown, for whoever checks the pixels
        self._task: Task | None = None

    def show_release(self, golden: list[dict] | None) -> None:
        if self._task is not None:
            self._task.abandon()
        self.clear()
        self.images = []
        if not golden:
            return
        frames = golden[:MAX_GOLDEN_SHOWN]

        def render(task: Task) -> list[tuple[QImage | None, str, list[dict]]]:
            out = []
            for frame in frames:
                task.raise_if_cancelled()
                detections = frame.get("detections") if isinstance(frame.get("detections"), list) else []
                try:
                    out.append((golden_thumbnail(Path(str(frame.get("image"))), detections), "", detections))
                except (ValueError, OSError) as exc:
                    out.append((None, str(exc), detections))
            return out

        self._task = self.tasks.run(render, on_done=self._rendered)

    def _rendered(self, thumbs: list[tuple[QImage | None, str, list[dict]]]) -> None:
        for i, (image, problem, detections) in enumerate(thumbs):
            item = QListWidgetItem(f"#{i + 1} · {len(detections)} box{'es' if len(detections) != 1 else ''}")
            if image is not None:
                self.images.append(image)
                item.setIcon(QIcon(QPixmap.fromImage(image)))
            lines = [f"{d.get('class_name')} {float(d.get('confidence', 0)):.2f} at {d.get('box')}"
                     for d in detections if isinstance(d, dict)] or ["no object expected in this frame"]
            item.setToolTip(plain_tooltip(([problem] if problem else []) + lines))
            self.addItem(item)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._task is not None:
            self._task.abandon()
        super().closeEvent(event)
