"""The wire protocol between the device agent and the console, in one place both sides import.

HTTP API under /v1 (aiohttp on the agent); JSON bodies; errors are `{"error": "...", "detail": ...}` with a 4xx/5xx.

Stream (`WS /v1/stream`): each binary WebSocket message is one frame:
    4 bytes big-endian header length N | N bytes UTF-8 JSON header | JPEG bytes of that very frame
so boxes can never be paired with the wrong image. Header keys: see `StreamHeader`.
Client -> agent text messages on the stream and telemetry sockets:
    {"type": "configure", "max_fps": 15, "quality": 80, "max_width": 640}   (any subset, any time)
    {"type": "ping", "t0": <client clock, s>}  -> {"type": "pong", "t0": ..., "server_time": <agent clock, s>}
Telemetry (`WS /v1/telemetry`): one JSON text message per second, a `TELEMETRY_FIELDS` sample.
Lossless frame (`GET /v1/frame`): the same framing with a BMP instead of the JPEG (content type
FRAME_CONTENT_TYPE); `?format=framed-png` the same with a PNG (smaller, slower); `?format=png` the bare PNG with
the sequence number in the X-Edge-Seq header; `?after=N` waits (long poll) for a frame after #N.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from edge_console.core import bounded_json
from edge_console.core.detection.record import Detection, Timings

API_VERSION = 1
SERVICE_TYPE = "_edgeinfer._tcp.local."
MAX_HEADER_BYTES = 256 * 1024  # a header is a few KB; anything larger is corrupt or hostile
MAX_HEADER_DEPTH = 8  # header -> detections -> detection -> box is 4 levels
FRAME_CONTENT_TYPE = "application/x-edge-frame"
_LEN = struct.Struct(">I")

# Keys of one telemetry sample (`None` where the hardware does not tell, never a made-up number).
TELEMETRY_FIELDS = (
    "ts", "fps_captured", "fps_inferred", "fps_streamed", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "preprocess_ms", "postprocess_ms", "cpu_percent", "rss_mb", "system_memory_percent", "temperature_c",
    "dropped_frames", "model_errors", "capture_failures", "detections_per_class", "health", "uptime_s",
)


# The steps of a model update on a device, as its records (`GET /v1/updates/{id}`) and events carry them in
# "state". Which step may follow which is the device's table (agent/updates/_records.py); both sides read these.
UPDATE_IN_PROGRESS = ("staged", "verified", "checked")  # nothing on the device has changed yet
UPDATE_ON_PROBATION = "active"  # the device runs the new model; its watchdog decides between good and rolled_back
UPDATE_SUCCEEDED = "good"
UPDATE_FAILED = ("rejected", "interrupted", "rolled_back")  # the device runs what it ran before (or went back to it)
UPDATE_FINAL = (UPDATE_SUCCEEDED, *UPDATE_FAILED)  # no step follows one of these
UPDATE_STEPS = (*UPDATE_IN_PROGRESS, UPDATE_ON_PROBATION, *UPDATE_FINAL)


class ProtocolError(ValueError):
    """Data from the other side does not follow the protocol; the message says what was wrong."""


@dataclass(frozen=True)
class StreamHeader:
    seq: int
    capture_ts: float  # agent clock, seconds since the epoch
    model_version: str
    width: int
    height: int
    timings: Timings = field(default_factory=Timings)
    detections: list[Detection] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "seq": self.seq,
            "capture_ts": self.capture_ts,
            "model_version": self.model_version,
            "width": self.width,
            "height": self.height,
            "timings": self.timings.to_dict(),
            "detections": [d.to_dict() for d in self.detections],
        }

    @classmethod
    def from_dict(cls, data: dict) -> StreamHeader:
        try:
            t = data.get("timings") or {}
            return cls(
                seq=int(data["seq"]),
                capture_ts=float(data["capture_ts"]),
                model_version=str(data.get("model_version", "")),
                width=int(data["width"]),
                height=int(data["height"]),
                timings=Timings(float(t.get("preprocess_ms", 0)), float(t.get("inference_ms", 0)),
                                float(t.get("postprocess_ms", 0))),
                detections=[Detection.from_dict(d) for d in data.get("detections", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProtocolError(f"bad stream header: {exc}") from exc


def encode_frame_message(header_json: bytes, jpeg: bytes) -> bytes:
    """Pack an already-serialised header with its JPEG. The agent serialises a header once for all clients."""
    return _LEN.pack(len(header_json)) + header_json + jpeg


def header_bytes(header: StreamHeader) -> bytes:
    return json.dumps(header.to_dict(), separators=(",", ":")).encode()


def decode_frame_message(data: bytes) -> tuple[StreamHeader, bytes]:
    """Split a frame message (stream: JPEG; /v1/frame: BMP or PNG) into header and image bytes; ProtocolError if not."""
    if len(data) < _LEN.size:
        raise ProtocolError(f"stream message of {len(data)} bytes is too short for its length prefix")
    (n,) = _LEN.unpack_from(data)
    if n > MAX_HEADER_BYTES or _LEN.size + n > len(data):
        raise ProtocolError(f"stream header length {n} does not fit a message of {len(data)} bytes")
    try:
        header = bounded_json.loads(data[_LEN.size : _LEN.size + n], MAX_HEADER_DEPTH)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"stream header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("stream header is not a JSON object")
    image = data[_LEN.size + n :]
    if not image.startswith((b"\xff\xd8", b"\x89PNG", b"BM")):
        raise ProtocolError("frame message carries no JPEG, PNG or BMP image after its header")
    return StreamHeader.from_dict(header), image


@dataclass(frozen=True)
class ClockSample:
    """One ping: client send time t0, agent time ts, client receive time t3 (seconds)."""

    t0: float
    server_time: float
    t3: float

    @property
    def round_trip(self) -> float:
        return self.t3 - self.t0

    @property
    def offset(self) -> float:
        """Agent clock minus client clock, assuming the reply took as long as the request (NTP's estimate)."""
        return self.server_time - (self.t0 + self.t3) / 2


def estimate_clock_offset(samples: list[ClockSample]) -> float | None:
    """Best estimate from several pings: the one with the shortest round trip has the least asymmetric delay."""
    if not samples:
        return None
    return min(samples, key=lambda s: s.round_trip).offset
