"""The continuous comparison cycle (fetch the device's frame losslessly + decode + local detect + match) against
local detect alone on the same frames, for parts-v2. Goal (issue 16): ratio <= 1.1.

The cycle is `CompareSession.run`, exactly what the Compare panel's continuous mode and `edge-console compare`
run: frame N+1 is fetched and decoded while frame N is inferred, so a cycle costs the slower of the two, not
their sum. For comparison the same run also measures the sequential cycle (fetch, then compare) it replaced.

The device is a real agent process on 127.0.0.1 (one inference thread, 5 fps, so it takes little of the CPU the
laptop side is measured on); the laptop side uses one inference thread too, and a two-thread pool like the
console's. The run asks for the device's newest frame each time (`wait_for_new=False`) so that the device's
camera rate does not pace it. Blocks of pipelined cycles, sequential cycles and bare detects are interleaved;
medians are kept.

    python benchmarks/bench_compare.py [--cycles 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.agent_start import start_agent  # noqa: E402
from edge_console.client.compare.fetch import fetch_device_frame  # noqa: E402
from edge_console.client.compare.session import CompareSession  # noqa: E402
from edge_console.core.detection.model_library import ModelLibrary  # noqa: E402
from edge_console.core.paths import demo_model  # noqa: E402


async def pipelined_cycles(session: CompareSession, cycles: int) -> list[float]:
    """Milliseconds between consecutive results of one continuous run (the first result, which has no fetch
    ahead of it, is left out)."""
    stamps: list[float] = []
    await session.run(lambda _frame, _comparison: stamps.append(time.perf_counter()), count=cycles + 1,
                      wait_for_new=False)
    return [(b - a) * 1e3 for a, b in zip(stamps, stamps[1:])]


async def sequential_cycles(session: CompareSession, cycles: int) -> tuple[list[float], list[float]]:
    """The cycle before issue 16: fetch + decode, then detect + match; also returns the fetch + decode share."""
    cycle_ms, fetch_ms = [], []
    for _ in range(cycles):
        t0 = time.perf_counter()
        frame = await session.fetch_next(wait_for_new=False)
        t1 = time.perf_counter()
        await session.compare(frame)
        t2 = time.perf_counter()
        cycle_ms.append((t2 - t0) * 1e3)
        fetch_ms.append((t1 - t0) * 1e3)
    return cycle_ms, fetch_ms


def bare_detects(session: CompareSession, image, cycles: int) -> list[float]:
    times = []
    for _ in range(cycles):
        t0 = time.perf_counter()
        session.detector.detect(image)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


async def measure(url: str, model: Path, cycles: int, rounds: int) -> dict:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="bench-compare")
    pipelined, sequential, fetch, detect = [], [], [], []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the agent's first inferred frame
                try:
                    await fetch_device_frame(http, url)
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            session = await CompareSession.open(http, url, ModelLibrary([]), model, intra_op_threads=1,
                                                executor=pool)
            image = (await session.fetch_next(wait_for_new=False)).image
            await pipelined_cycles(session, 10)  # warm connection, caches, onnxruntime
            bare_detects(session, image, 10)
            for _ in range(rounds):
                pipelined += await pipelined_cycles(session, cycles)
                cycle_ms, fetch_ms = await sequential_cycles(session, cycles)
                sequential += cycle_ms
                fetch += fetch_ms
                detect += bare_detects(session, image, cycles)
    finally:
        pool.shutdown()
    cycle, detect_ms = statistics.median(pipelined), statistics.median(detect)
    return {"cycle_ms": round(cycle, 3), "detect_ms": round(detect_ms, 3),
            "fetch_decode_ms": round(statistics.median(fetch), 3),
            "sequential_cycle_ms": round(statistics.median(sequential), 3),
            "ratio": round(cycle / detect_ms, 4), "sequential_ratio": round(statistics.median(sequential) / detect_ms, 4),
            "cycles": len(pipelined)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = demo_model("parts-v2")
    with tempfile.TemporaryDirectory() as tmp:  # the agent's state and, beside it, its logs
        agent = start_agent(model, Path(tmp) / "agent", "--fps", "5", "--no-advertise", secure=False)
        try:
            result = asyncio.run(measure(agent.url, model, args.cycles, args.rounds))
        finally:
            agent.stop()
    result = {"benchmark": "compare", "model": model.stem, **result}
    result["goal_ratio_le_1_1"] = result["ratio"] <= 1.1
    print(json.dumps(result))


if __name__ == "__main__":
    main()
