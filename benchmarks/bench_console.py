"""The console's speed with real simulated devices on loopback (issue 4).

Measures, each against a goal:
- the GUI thread's busy fraction (its CPU time / wall time) and its p99 event-loop stall (lateness of a 10 ms
  timer) while 4 devices stream 640x480 at 30 fps into a 2x2 grid;
- the per-frame cost of the console's receive path (split message + decode + convert to a paintable QImage)
  against a bare `cv2.imdecode` of the same JPEG bytes, interleaved in this process (goal ratio <= 1.5);
- capture-to-paint latency p50/p95 (device capture clock corrected by the estimated offset; goal p50 < 50 ms),
  and, to separate the console from the device, receive-to-paint;
- the time from console start (Fleet created) until 20 simulated devices are all listed via mDNS (goal < 3 s).

    python benchmarks/bench_console.py [--seconds 15] [--skip-listing]

The figures depend on the machine: the devices run on the same cores as the console. One JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from edge_console.console.demo import SimulatedFleet  # noqa: E402
from edge_console.console.fleet import Fleet  # noqa: E402
from edge_console.console.frames import decode_stream_message  # noqa: E402
from edge_console.console.qt_compat import guard_signal_emit_refcount  # noqa: E402
from edge_console.console.widgets.device_table import DeviceTable  # noqa: E402
from edge_console.console.widgets.grid_view import DeviceGrid  # noqa: E402
from edge_console.core.protocol import decode_frame_message  # noqa: E402

LOOPBACK = "127.0.0.1"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_qt_for(app: QApplication, seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def wait_for_listening(fleet: SimulatedFleet, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = fleet.listening()
        if len(listed) >= count:
            return listed
        if not fleet.running:
            raise RuntimeError("simulated fleet exited:\n" + fleet.log_tail())
        time.sleep(0.2)
    raise TimeoutError(f"only {len(fleet.listening())} of {count} devices started:\n{fleet.log_tail()}")


def measure_listing(app: QApplication, count: int) -> dict:
    """Console start to all `count` advertised devices listed in the table, found through mDNS on loopback."""
    devices = SimulatedFleet(count=count, fps=2.0).start()
    try:
        listed = wait_for_listening(devices, count, timeout=300)
        time.sleep(2.0)  # let every agent finish announcing, so we time the console's browse, not their start
        wanted = {str(address) for address, _name, _id in listed}
        with tempfile.TemporaryDirectory() as tmp:
            clock = QElapsedTimer()
            clock.start()
            fleet = Fleet(Path(tmp) / "bench.sqlite", [LOOPBACK])
            fleet.start()
            table = DeviceTable(fleet)
            address_column = next(c for c in range(table.model.columnCount())
                                  if table.model.headerData(c, Qt.Orientation.Horizontal) == "Address")
            elapsed = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
                rows = {table.model.index(r, address_column).data() for r in range(table.model.rowCount())}
                if wanted <= rows:
                    elapsed = clock.elapsed() / 1000
                    break
            fleet.close()
            del table
        return {"devices": count, "listed_s": round(elapsed, 3) if elapsed is not None else None}
    finally:
        devices.stop()


async def _collect_messages(url: str, n: int) -> list[bytes]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=32 << 20) as ws:
        messages = []
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                messages.append(msg.data)
                if len(messages) >= n:
                    break
        return messages


def measure_decode_path(messages: list[bytes], rounds: int = 5) -> dict:
    """decode_stream_message (what the console's decoder threads run per frame) vs bare cv2.imdecode."""
    jpegs = [decode_frame_message(m)[1] for m in messages]
    for m in messages[:5]:
        decode_stream_message(m, 0.0)
    ours, bare = [], []
    for _ in range(rounds):
        for message, jpeg in zip(messages, jpegs):
            t0 = time.perf_counter()
            cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            decode_stream_message(message, t1)
            t2 = time.perf_counter()
            bare.append((t1 - t0) * 1e3)
            ours.append((t2 - t1) * 1e3)
    return {"console_decode_ms": round(statistics.median(ours), 3), "bare_imdecode_ms": round(statistics.median(bare), 3),
            "decode_ratio": round(statistics.median(ours) / statistics.median(bare), 3), "frames": len(ours)}


def measure_grid(app: QApplication, seconds: float) -> dict:
    devices = SimulatedFleet(count=4, fps=30.0).start()
    try:
        listed = wait_for_listening(devices, 4, timeout=180)
        with tempfile.TemporaryDirectory() as tmp:
            fleet = Fleet(Path(tmp) / "bench.sqlite", [LOOPBACK], discover=False,
                          stream_params={"max_width": 640, "max_fps": 30})
            fleet.start()
            grid = DeviceGrid()
            grid.resize(1280, 1000)
            grid.show()
            states = [fleet.add_manual(address) for address, _name, _id in listed]
            for state in states:
                grid.add_device(state)
            run_qt_for(app, 5.0)  # connect, sync clocks, warm up decoders

            messages = asyncio.run(_collect_messages(f"{listed[0][0].base_url}/v1/stream?max_width=640", 60))
            for canvas in grid.tiles.values():
                canvas.paint_latencies_ms.clear()
                canvas.receive_to_paint_ms.clear()
            frames_before = sum(s.frames_received for s in states)
            # The device's and the network's share: capture (device clock, offset-corrected) to arrival here.
            capture_to_receive: list[float] = []

            def on_frame(state) -> None:
                frame = state.latest_frame
                if frame is not None and state.clock_offset is not None:
                    capture_to_receive.append((frame.received_at - frame.header.capture_ts + state.clock_offset) * 1e3)

            for state in states:
                state.frame_arrived.connect(lambda s=state: on_frame(s))
            stalls: list[float] = []
            tick = QElapsedTimer()
            probe = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)

            def on_probe() -> None:
                stalls.append(max(0.0, tick.nsecsElapsed() / 1e6 - 10.0))
                tick.restart()

            probe.timeout.connect(on_probe)
            tick.start()
            probe.start()
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            run_qt_for(app, seconds)
            busy = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)
            probe.stop()

            painted = [v for c in grid.tiles.values() for v in c.paint_latencies_ms]
            received = sum(s.frames_received for s in states) - frames_before
            telemetry_fps = [s.latest_sample.get("fps_streamed") for s in states if s.latest_sample]
            offsets = [s.clock_offset for s in states if s.clock_offset is not None]
            receive_to_paint = [v for c in grid.tiles.values() for v in c.receive_to_paint_ms]
            grid.detach()
            fleet.close()
        first = decode_frame_message(messages[0])[0]
        result = {
            "devices": len(states), "requested_fps": 30, "frame": f"{first.width}x{first.height}", "seconds": seconds,
            "frames_received_per_s": round(received / seconds, 1),
            "frames_painted_per_s": round(len(painted) / seconds, 1),
            "device_fps_streamed": [round(f, 1) for f in telemetry_fps if isinstance(f, int | float)],
            "gui_busy_fraction": round(busy, 3),
            "gui_stall_p99_ms": round(percentile(stalls, 99), 2),
            "gui_stall_max_ms": round(max(stalls, default=0.0), 2),
            "capture_to_paint_p50_ms": round(percentile(painted, 50), 1),
            "capture_to_paint_p95_ms": round(percentile(painted, 95), 1),
            "capture_to_receive_p50_ms": round(percentile(capture_to_receive, 50), 1),
            "receive_to_paint_p50_ms": round(percentile(receive_to_paint, 50), 2),
            "receive_to_paint_p95_ms": round(percentile(receive_to_paint, 95), 2),
            "clock_offset_abs_max_ms": round(max((abs(o) for o in offsets), default=float("nan")) * 1000, 3),
        }
        result.update(measure_decode_path(messages))
        return result
    finally:
        devices.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--listing-devices", type=int, default=20)
    parser.add_argument("--skip-listing", action="store_true")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    guard_signal_emit_refcount()
    summary: dict = {"benchmark": "console", "cpu_count": os.cpu_count(), "threads_at_start": threading.active_count()}
    grid = measure_grid(app, args.seconds)
    print(json.dumps(grid), flush=True)
    summary["grid"] = grid
    if not args.skip_listing:
        listing = measure_listing(app, args.listing_devices)
        print(json.dumps(listing), flush=True)
        summary["listing"] = listing
    summary["goal_decode_ratio_le_1_5"] = grid["decode_ratio"] <= 1.5
    summary["goal_capture_to_paint_p50_lt_50ms"] = grid["capture_to_paint_p50_ms"] < 50
    if "listing" in summary:
        listed = summary["listing"]["listed_s"]
        summary["goal_20_devices_listed_lt_3s"] = listed is not None and listed < 3
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
