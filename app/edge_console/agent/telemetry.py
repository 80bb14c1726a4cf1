"""One telemetry sample a second, computed from two pipeline snapshots and the process; kept on the device."""

from __future__ import annotations

import asyncio
import time

import psutil

from edge_console.agent.health import Health
from edge_console.agent.pipeline.stats import PipelineSnapshot


class TelemetrySampler:
    """Turns consecutive snapshots into rates; knows nothing of the agent (it is given what it reports)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement window
        self._previous: PipelineSnapshot | None = None

    def process_figures(self) -> dict:
        """CPU, memory of this process and the system; psutil may fail (e.g. out of descriptors): say None."""
        try:
            return {"cpu_percent": round(self.process.cpu_percent(None), 1),
                    "rss_mb": round(self.process.memory_info().rss / 2**20, 1),
                    "system_memory_percent": round(psutil.virtual_memory().percent, 1)}
        except (OSError, psutil.Error):
            return {"cpu_percent": None, "rss_mb": None, "system_memory_percent": None}

    def sample(self, snap: PipelineSnapshot, health: Health, temperature_c: float | None, uptime_s: float,
               process: dict) -> dict:
        prev = self._previous
        self._previous = snap
        dt = max(snap.at - prev.at, 1e-6) if prev else 1.0

        def rate(now: int, before: int) -> float:
            return round((now - before) / dt, 2) if prev else 0.0

        classes = {name: n - (prev.class_totals.get(name, 0) if prev else 0) for name, n in snap.class_totals.items()}
        return {
            "ts": round(time.time(), 3),
            "fps_captured": rate(snap.captured, prev.captured if prev else 0),
            "fps_inferred": rate(snap.inferred, prev.inferred if prev else 0),
            "fps_streamed": rate(snap.streamed, prev.streamed if prev else 0),
            **snap.latency,
            **process,
            "temperature_c": temperature_c,
            "dropped_frames": snap.dropped,
            "model_errors": snap.model_errors,
            "capture_failures": snap.capture_failures,
            "detections_per_class": {k: v for k, v in classes.items() if v},
            "health": health.to_dict(),
            "uptime_s": round(uptime_s, 1),
        }


class TelemetryHub:
    """Newest sample plus a wake-up for waiting clients; a slow client skips samples, it never queues them."""

    def __init__(self) -> None:
        self.latest: dict | None = None
        self._event = asyncio.Event()

    def publish(self, sample: dict) -> None:
        self.latest = sample
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_newer(self, ts: float) -> dict:
        while self.latest is None or self.latest["ts"] <= ts:
            await self._event.wait()
        return self.latest
