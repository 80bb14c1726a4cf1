"""One telemetry sample a second, from the pipeline's counters and the process; kept on the device."""

from __future__ import annotations

import asyncio
import time

import psutil

from .health import Health


class TelemetrySampler:
    """Builds samples; `TelemetryHub` below hands the newest to every telemetry WebSocket client."""

    def __init__(self, agent):
        self.agent = agent
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement window
        self._last = (time.monotonic(), 0, 0, 0)

    def sample(self, health: Health, temperature_c: float | None) -> dict:
        a = self.agent
        now = time.monotonic()
        captured, inferred, streamed = a.capture.captured, a.stats.inferred, a.stats.streamed
        t0, c0, i0, s0 = self._last
        dt = max(now - t0, 1e-6)
        self._last = (now, captured, inferred, streamed)
        memory = psutil.virtual_memory()
        sample = {
            "ts": round(time.time(), 3),
            "fps_captured": round((captured - c0) / dt, 2),
            "fps_inferred": round((inferred - i0) / dt, 2),
            "fps_streamed": round((streamed - s0) / dt, 2),
            **a.stats.latency_summary(),
            "cpu_percent": round(self.process.cpu_percent(None), 1),
            "rss_mb": round(self.process.memory_info().rss / 2**20, 1),
            "system_memory_percent": round(memory.percent, 1),
            "temperature_c": temperature_c,
            "dropped_frames": a.frames.dropped,
            "detections_per_class": a.stats.take_class_counts(),
            "health": health.to_dict(),
            "uptime_s": round(a.uptime_s, 1),
        }
        return sample


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
