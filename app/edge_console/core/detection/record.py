"""The detection record every part of the product exchanges (detector, agent wire format, console, matching)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object; the box is in pixels of the source image (x1, y1 top-left, x2, y2 bottom-right)."""

    x1: float
    y1: float
    x2: float
    y2: float
    class_id: int
    class_name: str
    confidence: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)

    def to_dict(self) -> dict:
        # Rounded so the wire format stays small; sub-centipixel precision means nothing for a box.
        return {
            "box": [round(self.x1, 2), round(self.y1, 2), round(self.x2, 2), round(self.y2, 2)],
            "class_id": self.class_id,
            "class_name": self.class_name,
            "confidence": round(self.confidence, 4),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Detection:
        """Parse the wire form; raises ValueError naming the field that is wrong."""
        try:
            x1, y1, x2, y2 = (float(v) for v in data["box"])
            return cls(x1, y1, x2, y2, int(data["class_id"]), str(data["class_name"]), float(data["confidence"]))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"not a detection (expected box[4], class_id, class_name, confidence): {data!r:.200}") from exc


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds spent in each stage of one detector call."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms

    def to_dict(self) -> dict:
        return {
            "preprocess_ms": round(self.preprocess_ms, 3),
            "inference_ms": round(self.inference_ms, 3),
            "postprocess_ms": round(self.postprocess_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class DetectionResult:
    detections: list[Detection] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
