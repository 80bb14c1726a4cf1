"""The comparison pipeline's rules with stand-in fetch and compare functions (no device, no model, no Qt):
order, how far it fetches ahead, what a failure delivers first, and that cancelling stops it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import numpy as np
import pytest

from edge_console.client.compare.fetch import DeviceFrame
from edge_console.client.compare.pipeline import ComparePipeline
from edge_console.core.detection.comparison import FrameComparison
from edge_console.core.detection.matching import match_detections
from edge_console.core.detection.record import Timings
from edge_console.core.protocol import StreamHeader

WAIT_S = 30.0  # a guard against hanging, not a timing assertion


class Device:
    """Frames numbered 1, 2, 3...; `fail_at` makes that fetch raise; `gate` holds every fetch until set."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fetches = 0
        self.fail_at = fail_at
        self.gate = asyncio.Event()
        self.gate.set()

    async def fetch(self) -> DeviceFrame:
        self.fetches += 1
        seq = self.fetches
        await self.gate.wait()
        if seq == self.fail_at:
            raise ConnectionError(f"fetch {seq} failed")
        return DeviceFrame(StreamHeader(seq, 0.0, "1", 4, 4), np.full((4, 4, 3), seq, np.uint8), b"")


class Model:
    """Compares on the pool thread; notes how many frames were fetched but not yet compared when it starts one."""

    def __init__(self, device: Device, fail_at: int | None = None) -> None:
        self.device = device
        self.fail_at = fail_at
        self.threads: set[int] = set()
        self.compared: list[int] = []

    def compare(self, frame: DeviceFrame) -> FrameComparison:
        self.threads.add(threading.get_ident())
        seq = frame.header.seq
        if seq == self.fail_at:
            raise ValueError(f"frame {seq} does not match its header")
        assert int(frame.image[0, 0, 0]) == seq  # the pixels of this very frame
        self.compared.append(seq)
        return FrameComparison(seq, [], [], Timings(), Timings(), match_detections([], []), frame.image)


def run_pipeline(device: Device, model: Model, count: int | None, on_compared=None, scenario=None):
    delivered: list[tuple[int, int]] = []

    def note(frame: DeviceFrame, comparison: FrameComparison) -> None:
        delivered.append((frame.header.seq, comparison.seq))
        if on_compared is not None:
            on_compared(frame, comparison)

    async def main():
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pipeline = ComparePipeline(device.fetch, model.compare, note, pool, count)
            if scenario is None:
                return await asyncio.wait_for(pipeline.run(), WAIT_S)
            return await scenario(pipeline)

    return asyncio.run(main()), delivered


def test_results_come_in_order_each_with_its_own_frame_off_the_loop():
    device = Device()
    model = Model(device)
    count, delivered = run_pipeline(device, model, 20)
    assert count == 20 and delivered == [(i, i) for i in range(1, 21)]
    assert device.fetches == 20  # never a frame more than asked for
    assert threading.get_ident() not in model.threads  # inference never on the loop's thread


def test_it_fetches_at_most_one_frame_ahead():
    device = Device()
    model = Model(device)
    ahead: list[int] = []
    run_pipeline(device, model, 30, on_compared=lambda frame, _c: ahead.append(device.fetches - frame.header.seq))
    assert max(ahead) <= 2 and min(ahead) >= 0  # at delivery of N: at most N+1 fetched, N+2 possibly started


def test_a_failed_fetch_is_raised_after_the_frames_before_it():
    device = Device(fail_at=5)
    model = Model(device)
    with pytest.raises(ConnectionError, match="fetch 5 failed"):
        run_pipeline(device, model, 10)
    assert model.compared == [1, 2, 3, 4]


def test_a_failed_comparison_ends_the_run_without_later_frames():
    device = Device()
    model = Model(device, fail_at=3)
    delivered: list[int] = []
    with pytest.raises(ValueError, match="frame 3"):
        run_pipeline(device, model, 10, on_compared=lambda frame, _c: delivered.append(frame.header.seq))
    assert delivered == [1, 2]


def test_cancelling_stops_fetching_and_delivering():
    device = Device()
    model = Model(device)
    delivered: list[int] = []

    async def scenario(pipeline: ComparePipeline) -> int:
        task = asyncio.ensure_future(pipeline.run())
        while len(delivered) < 3:
            await asyncio.sleep(0)
        device.gate.clear()  # the next fetch waits, as a device's long poll does
        task.cancel()
        at_cancel = len(delivered)
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # room for a late result to (wrongly) arrive
        return at_cancel

    at_cancel, _ = run_pipeline(device, model, None, on_compared=lambda frame, _c: delivered.append(frame.header.seq),
                                scenario=scenario)
    assert delivered == list(range(1, at_cancel + 1))  # nothing after the cancel, nothing out of order
    assert device.fetches <= at_cancel + 2
