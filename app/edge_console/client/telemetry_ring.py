"""The console's in-memory ring of telemetry samples per device (the charts' data): memory is bounded by design,
whatever the uptime. Not to be confused with the agent's SQLite telemetry history on the device, which the console
reads to fill this ring after a reconnect."""

from __future__ import annotations

import math

import numpy as np

# What the charts plot, one column each; anything else in a sample (health, detections) is only kept as latest.
CHART_METRICS: tuple[str, ...] = (
    "fps_captured", "fps_inferred", "fps_streamed", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "cpu_percent", "rss_mb", "system_memory_percent", "temperature_c", "dropped_frames",
)
DEFAULT_CAPACITY = 4096  # > 1 h at the agent's 1 Hz, the longest chart window


def _as_float(value: object) -> float:
    """Numbers as float, anything else (None: the hardware does not say) as NaN, which charts leave as a gap."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


class TelemetryRing:
    """Samples in arrival order, timestamps on the CONSOLE clock (the device's corrected by its clock offset),
    so curves of several devices line up on one time axis."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._t = np.zeros(capacity)
        self._values = np.full((len(CHART_METRICS), capacity), np.nan)
        self._next = 0  # index the next sample goes to
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def last_time(self) -> float | None:
        return float(self._t[(self._next - 1) % self.capacity]) if self._size else None

    def append(self, t: float, sample: dict) -> bool:
        """Add one sample; a sample not newer than the last one is ignored (False), so refills cannot duplicate."""
        last = self.last_time
        if last is not None and t <= last:
            return False
        i = self._next
        self._t[i] = t
        for row, key in enumerate(CHART_METRICS):
            self._values[row, i] = _as_float(sample.get(key))
        self._next = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        return True

    def _ordered(self, array: np.ndarray) -> np.ndarray:
        if self._size < self.capacity:
            return array[..., : self._size]
        return np.concatenate((array[..., self._next:], array[..., : self._next]), axis=-1)

    def since(self, t_min: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Times and one array per metric for samples at or after `t_min` (copies; safe to hand to a plot)."""
        t = self._ordered(self._t)
        start = int(np.searchsorted(t, t_min, side="left"))
        values = self._ordered(self._values)[:, start:]
        return t[start:].copy(), {key: values[row].copy() for row, key in enumerate(CHART_METRICS)}


def per_second_increase(t: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Rate of a cumulative counter (dropped frames) per second; a counter reset (device restart) reads as 0."""
    if len(t) < 2:
        return np.full(len(t), np.nan)
    rate = np.diff(cumulative) / np.maximum(np.diff(t), 1e-6)
    rate[rate < 0] = 0.0
    return np.concatenate(([np.nan], rate))


def break_gaps(t: np.ndarray, values: dict[str, np.ndarray], max_gap_s: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Insert a NaN sample wherever consecutive samples are further apart than `max_gap_s`, so a chart shows the
    time a device was away (and its history could not fill) as a gap instead of a straight line across it."""
    if len(t) < 2:
        return t, values
    gaps = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    if not len(gaps):
        return t, values
    t_out = np.insert(t, gaps, t[gaps - 1] + max_gap_s / 2)
    return t_out, {key: np.insert(v, gaps, np.nan) for key, v in values.items()}
