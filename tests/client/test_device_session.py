"""A `DeviceSession` against a fake agent on 127.0.0.1, without Qt: the device's clock offset and the latency
corrected by it, the telemetry history paged in, and reconnecting with backoff when the device comes back.

The clock tests are exact up to what the estimate itself guarantees: the device's time is read between sending a
ping and receiving its answer, so the estimated offset is within half a round trip of the true skew. A sign error
would be off by twice the skew (two hours, or three minutes), far outside that bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from edge_console.client.net.device_clock import console_time, latency_since
from edge_console.client.net.device_session import HISTORY_PAGE, DeviceSession
from edge_console.core.backoff import BackoffPolicy
from edge_console.core.protocol import decode_frame_message
from tests.support.fake_devices import CAPTURE_AGE_S, FakeAgent

WAIT_S = 30.0  # only a guard against hanging forever; every wait below returns as soon as its event happens
EPSILON_S = 1e-6  # float rounding of epoch seconds plus an hour


@dataclass
class Recorder:
    """A SessionListener that keeps what it is told; `until` waits for a condition on it."""

    infos: list[dict] = field(default_factory=list)
    connections: list[tuple[bool, str]] = field(default_factory=list)
    history: list[list[dict]] = field(default_factory=list)
    live: list[dict] = field(default_factory=list)
    clocks: list[tuple[float, float]] = field(default_factory=list)
    frames: list[tuple] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _note(self) -> None:
        self.changed.set()

    def on_info(self, info: dict) -> None:
        self.infos.append(info)
        self._note()

    def on_connection(self, connected: bool, reason: str) -> None:
        self.connections.append((connected, reason))
        self._note()

    def on_health(self, health: dict) -> None:
        pass

    def on_telemetry(self, samples: list[dict], from_history: bool) -> None:
        (self.history.append(samples) if from_history else self.live.extend(samples))
        self._note()

    def on_clock(self, offset_s: float, round_trip_s: float) -> None:
        self.clocks.append((offset_s, round_trip_s))
        self._note()

    def on_stream_state(self, live: bool, reason: str) -> None:
        pass

    def on_frame(self, frame: tuple) -> None:
        self.frames.append(frame)
        self._note()

    def on_trust(self, trust: str, detail: str) -> None:
        self.trust = trust

    def on_error(self, message: str) -> None:
        self.errors.append(message)
        self._note()

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), WAIT_S)


def header_and_arrival(data: bytes, received_at: float) -> tuple:
    """The test's stream decoder: the header and when it arrived (the JPEG is not the point here)."""
    return decode_frame_message(data)[0], received_at


async def with_session(agent: FakeAgent, scenario: Callable[[DeviceSession, Recorder], Awaitable[None]],
                       backoff: Callable[[], BackoffPolicy] | None = None) -> None:
    recorder = Recorder()
    async with aiohttp.ClientSession() as http:
        kwargs = {"backoff_policy": backoff} if backoff else {}
        session = DeviceSession(http, agent.address, recorder, header_and_arrival, None, **kwargs)
        session.start()
        try:
            await scenario(session, recorder)
        finally:
            await session.close()
            await agent.stop()


@pytest.mark.parametrize("skew_s", [3600.0, -90.0], ids=["device-an-hour-ahead", "device-90s-behind"])
def test_clock_offset_sign_and_corrected_latency(skew_s):
    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        await recorder.until(lambda: recorder.clocks and any(c for c, _ in recorder.connections))
        offset, round_trip = recorder.clocks[-1]
        # Device clock minus console clock: positive when the device is ahead, and within half a round trip.
        assert (offset > 0) == (skew_s > 0)
        assert abs(offset - skew_s) <= round_trip / 2 + EPSILON_S

        # Latency of a frame the device says it captured CAPTURE_AGE_S before sending it: corrected by the
        # offset, it is the time since the real capture moment (on the console's clock), to the same bound.
        session.set_stream_wanted(True)
        await recorder.until(lambda: len(recorder.frames) >= 3)
        offset, round_trip = recorder.clocks[-1]
        for header, received_at in recorder.frames:
            estimated = latency_since(header.capture_ts, offset, now=received_at)
            true_latency = received_at - (agent.sent_at[header.seq] - CAPTURE_AGE_S)
            assert abs(estimated - true_latency) <= round_trip / 2 + EPSILON_S
            assert estimated >= CAPTURE_AGE_S - round_trip / 2 - EPSILON_S  # never "before it was captured"

        # Live telemetry lands on the console's clock (the charts' time axis): the fake stamps each sample with
        # its device time, so the console time it was sent at is that minus the skew.
        await recorder.until(lambda: len(recorder.live) >= 2)
        for sample in recorder.live:
            assert abs(console_time(sample["ts"], offset) - (sample["ts"] - skew_s)) <= round_trip / 2 + EPSILON_S

    agent = FakeAgent(skew_s=skew_s)

    async def main() -> None:
        await agent.start()
        await with_session(agent, scenario)

    asyncio.run(main())


@pytest.mark.parametrize("skew_s", [3600.0, -90.0], ids=["device-an-hour-ahead", "device-90s-behind"])
def test_history_fill_asks_for_the_devices_last_hour_and_pages_through_it(skew_s):
    now = time.time() + skew_s
    # Three samples older than the hour (the device's hour!) must not be asked for; 1500 within it must all come,
    # in pages of HISTORY_PAGE, each asked from the last timestamp of the page before.
    old = [now - 7000.0, now - 5000.0, now - 3700.0]
    recent = [now - 3500.0 + 2.0 * i for i in range(1500)]
    agent = FakeAgent(skew_s=skew_s, history_ts=old + recent, telemetry_period_s=3600.0)

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        await recorder.until(lambda: sum(len(page) for page in recorder.history) >= len(recent))
        await recorder.until(lambda: any(c for c, _ in recorder.connections))  # the fill is over: connected
        received = [s["ts"] for page in recorder.history for s in page]
        assert received == recent  # each sample once, in order, none from before the hour
        requests = agent.history_requests
        assert [(r.returned, r.more) for r in requests] == [(600, True), (600, True), (300, False)]
        assert all(r.limit == HISTORY_PAGE for r in requests)
        assert requests[1].since == recent[599] and requests[2].since == recent[1199]  # exactly: no sample twice
        first_since = requests[0].since  # the console's idea of "an hour ago" on the device's clock
        assert old[-1] < first_since < recent[0]  # the hour ends in the gap the samples leave (3700 s to 3500 s)

    async def main() -> None:
        await agent.start()
        await with_session(agent, scenario)

    asyncio.run(main())


class RecordingPolicy(BackoffPolicy):
    """The session's retry policy without jitter, noting every delay it hands out."""

    delays: list[float]

    def next_delay(self) -> float:
        delay = super().next_delay()
        self.delays.append(delay)
        return delay


def test_reconnects_with_growing_delays_when_the_device_comes_back():
    policies: list[RecordingPolicy] = []

    def policy() -> BackoffPolicy:
        made = RecordingPolicy(initial=0.05, maximum=0.4, jitter=0.0)
        made.delays = []
        policies.append(made)
        return made

    agent = FakeAgent(skew_s=-90.0)

    async def scenario(session: DeviceSession, recorder: Recorder) -> None:
        control = policies[0]  # made first: the control channel's (the stream is never opened here)
        await recorder.until(lambda: recorder.connections[-1:] == [(True, "")])
        for _round in range(2):
            port = agent.address.port
            await agent.stop()
            # Gone: the session says so and keeps retrying, each wait twice the last, up to the maximum.
            await recorder.until(lambda: len(control.delays) >= 5)
            assert control.delays[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]
            assert recorder.connections[-1][0] is False
            assert any("unreachable" in reason or "closed" in reason for _, reason in recorder.connections)
            infos_before = len(recorder.infos)
            await agent.start(port=port)  # back on the same address: found by the retries alone
            await recorder.until(lambda before=infos_before: recorder.connections[-1:] == [(True, "")]
                                 and len(recorder.infos) > before)
            control.delays.clear()  # after a success the delays start small again (checked in round 2)

    async def main() -> None:
        await agent.start()
        await with_session(agent, scenario, backoff=policy)

    asyncio.run(main())
