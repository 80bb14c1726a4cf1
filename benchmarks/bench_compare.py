"""A comparison cycle (fetch the device's frame losslessly + decode + local detect + match) against local detect
alone on the same frame, for parts-v2. Goal (issue 5): ratio <= 1.3.

The device is a real agent process on 127.0.0.1 (one inference thread, 5 fps, so it takes little of the CPU the
laptop side is measured on); the laptop side uses one inference thread too. Calls are interleaved, medians kept.

    python benchmarks/bench_compare.py [--cycles 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_console.console.compare.fetch import fetch_frame  # noqa: E402
from edge_console.core.comparison import compare_frame  # noqa: E402
from edge_console.core.detector import Detector  # noqa: E402
from edge_console.core.paths import demo_model  # noqa: E402

from tests.support.agents import AgentProcess, agent_args  # noqa: E402


async def measure(url: str, detector: Detector, cycles: int) -> dict:
    mapping = {i: i for i in range(detector.spec.num_classes)}
    cycle_ms, fetch_ms, detect_ms = [], [], []
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # the agent's first frame, then connection and caches warm
            try:
                await fetch_frame(session, url)
                break
            except Exception:
                await asyncio.sleep(0.2)
        for _ in range(cycles):
            t0 = time.perf_counter()
            header, image = await fetch_frame(session, url)
            t1 = time.perf_counter()
            compare_frame(image, header, detector, mapping)
            t2 = time.perf_counter()
            detector.detect(image)
            t3 = time.perf_counter()
            cycle_ms.append((t2 - t0) * 1e3)
            fetch_ms.append((t1 - t0) * 1e3)
            detect_ms.append((t3 - t2) * 1e3)
    cycle, detect = statistics.median(cycle_ms), statistics.median(detect_ms)
    return {"cycle_ms": round(cycle, 3), "detect_ms": round(detect, 3), "fetch_decode_ms": round(statistics.median(fetch_ms), 3),
            "ratio": round(cycle / detect, 4), "cycles": cycles}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=40)
    args = parser.parse_args()
    model = demo_model("parts-v2")
    detector = Detector(model, intra_op_threads=1)
    with tempfile.TemporaryDirectory() as state:
        agent = AgentProcess(agent_args(model, Path(state), "--fps", "5", "--no-advertise"))
        try:
            result = asyncio.run(measure(agent.url, detector, args.cycles))
        finally:
            agent.stop()
    result = {"benchmark": "compare", "model": model.stem, **result}
    result["goal_ratio_le_1_3"] = result["ratio"] <= 1.3
    print(json.dumps(result))


if __name__ == "__main__":
    main()
