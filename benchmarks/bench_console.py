"""The console's speed with real simulated devices on loopback (issue 4).

Measures, each against a goal:
- the GUI thread's busy fraction (its CPU time / wall time) and its p99 event-loop stall (lateness of a 10 ms
  timer) while 4 devices stream 640x480 at 30 fps into a 2x2 grid;
- the per-frame cost of the console's receive path (split message + decode + convert to a paintable QImage)
  against a bare `cv2.imdecode` of the same JPEG bytes, interleaved in this process (goal ratio <= 1.5);
- capture-to-paint latency p50/p95 (device capture clock corrected by the estimated offset; goal p50 < 50 ms),
  and, to separate the console from the device, receive-to-paint;
- the time from console start (Fleet created) until 20 simulated devices are all listed via mDNS (goal < 3 s).

The devices are real agents with the simulator's profiles (`edge-agent simulate`'s names, models and one slow
device), started here one process each so that they can run either way (issue 11):
- `--tls` (the default, as on a site): TLS 1.3 with mutual TLS. A throwaway console identity, made in a temporary
  data folder handed to the Fleet (never the user's), is enrolled on every device before it starts, and the Fleet
  pins each device's certificate, as the demo does; the benchmark's own stream client pins it too.
- `--no-tls`: the devices run in insecure lab mode and everything is plain HTTP.
Because TLS is decrypted on the console's network thread, not in the decode measured above, the grid run also
measures that thread's CPU time per received frame (WebSocket + TLS + the frame ring) and the decoder threads',
and reports receive + decode against the bare decode in CPU time (`receive_decode_ratio`).

    python benchmarks/bench_console.py [--seconds 15] [--skip-listing] [--tls | --no-tls]

The figures depend on the machine: the devices run on the same cores as the console. One JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
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

from benchmarks.tls_setup import (  # noqa: E402
    add_tls_argument,
    bench_console_identity,
    device_certificate,
    enrol_console,
    pinned_context,
)
from edge_console.agent.simulate import agent_command  # noqa: E402
from edge_console.client.net.addresses import DeviceAddress  # noqa: E402
from edge_console.console.fleet import Fleet  # noqa: E402
from edge_console.console.frames import decode_stream_message  # noqa: E402
from edge_console.console.qt_compat import guard_signal_emit_refcount  # noqa: E402
from edge_console.console.widgets.device_table import DeviceTable  # noqa: E402
from edge_console.console.widgets.grid_view import DeviceGrid  # noqa: E402
from edge_console.core.protocol import decode_frame_message  # noqa: E402
from edge_console.core.trust.tls_identity import TlsIdentity  # noqa: E402
from tests.support.agent_harness import Agent  # noqa: E402

LOOPBACK = "127.0.0.1"
STARTS_AT_ONCE = 2 * (os.cpu_count() or 1)  # agents starting together: each start has its own deadline (the harness's)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_qt_for(app: QApplication, seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


class BenchDevices:
    """`count` agents with the simulator's profiles on 127.0.0.1 (advertised on loopback only), each its own process:
    secure with the benchmark's console enrolled (`identity`), or in insecure lab mode (`identity=None`)."""

    def __init__(self, count: int, fps: float, base_dir: Path, identity: TlsIdentity | None) -> None:
        self.identity = identity
        self.states = [base_dir / f"device-{i + 1}" for i in range(count)]
        lab = [] if identity is not None else ["--insecure-lab-mode"]
        # the simulator's own command line (`command`), as before; the logs go beside each state folder
        self.agents = [Agent.from_args(lab, base_dir / f"device-{i + 1}-logs",
                                       command=agent_command(i, [LOOPBACK], base_dir, fps))
                       for i in range(count)]
        if identity is not None:
            for state in self.states:
                enrol_console(state, identity)

    def start(self) -> list[tuple[DeviceAddress, str, str, Path]]:
        """Start every device (several at once: 20 started one after the other take long, but not all at once
        either, so that each start's own deadline still holds on a 2-core box); (address, name, id, state folder)
        of each once all serve."""
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=STARTS_AT_ONCE) as pool:
                list(pool.map(Agent.start, self.agents))  # raises the first failed start, after all have finished
        except BaseException:
            self.stop()
            raise
        scheme = "https://" if self.identity is not None else "http://"
        out = []
        for agent, state in zip(self.agents, self.states):
            if not agent.url.startswith(scheme):
                raise RuntimeError(f"asked for {scheme} but the device serves {agent.url}")
            out.append((DeviceAddress(LOOPBACK, agent.port), agent.listening[0].name, agent.device_id, state))
        return out

    def stop(self) -> None:
        """Stop them all at once: 20 agents stopping one after the other take long."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.agents))) as pool:
            list(pool.map(Agent.stop, self.agents))


def measure_listing(app: QApplication, count: int, data_dir: Path, identity: TlsIdentity | None) -> dict:
    """Console start to all `count` advertised devices listed in the table, found through mDNS on loopback. The
    devices are not pinned here: listing is discovery's work, before any pairing."""
    with tempfile.TemporaryDirectory() as tmp:
        devices = BenchDevices(count, 2.0, Path(tmp), identity)
        try:
            listed = devices.start()
            time.sleep(2.0)  # let every agent finish announcing, so we time the console's browse, not their start
            wanted = {str(address) for address, _name, _id, _state in listed}
            clock = QElapsedTimer()
            clock.start()
            fleet = Fleet(data_dir / "listing.sqlite", [LOOPBACK], data_dir=data_dir)
            table = None
            try:
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
            finally:
                fleet.close()
                del table
        finally:
            devices.stop()
    return {"devices": count, "listed_s": round(elapsed, 3) if elapsed is not None else None}


def thread_cpu_s(prefix: str) -> float:
    """CPU seconds used so far by this process's live threads whose name starts with `prefix` (NaN where the
    platform cannot tell per thread: macOS, Windows)."""
    if not hasattr(time, "pthread_getcpuclockid"):
        return float("nan")
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith(prefix) and thread.ident is not None:
            try:
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            except (OSError, ProcessLookupError):  # the thread ended meanwhile
                pass
    return total


async def _collect_messages(url: str, n: int, tls) -> list[bytes]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=32 << 20,
                                                                      ssl=tls if tls is not None else False) as ws:
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
    ours_cpu, bare_cpu = 0.0, 0.0
    for _ in range(rounds):
        for message, jpeg in zip(messages, jpegs):
            c0, t0 = time.thread_time(), time.perf_counter()
            cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            c1, t1 = time.thread_time(), time.perf_counter()
            decode_stream_message(message, t1)
            c2, t2 = time.thread_time(), time.perf_counter()
            bare.append((t1 - t0) * 1e3)
            ours.append((t2 - t1) * 1e3)
            bare_cpu += c1 - c0
            ours_cpu += c2 - c1
    return {"console_decode_ms": round(statistics.median(ours), 3), "bare_imdecode_ms": round(statistics.median(bare), 3),
            "decode_ratio": round(statistics.median(ours) / statistics.median(bare), 3), "frames": len(ours),
            "console_decode_cpu_ms": round(ours_cpu / len(ours) * 1e3, 3),
            "bare_imdecode_cpu_ms": round(bare_cpu / len(bare) * 1e3, 3)}


def measure_grid(app: QApplication, seconds: float, data_dir: Path, identity: TlsIdentity | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        devices = BenchDevices(4, 30.0, Path(tmp), identity)
        fleet = grid = None
        try:
            listed = devices.start()
            fleet = Fleet(data_dir / "grid.sqlite", [LOOPBACK], discover=False,
                          stream_params={"max_width": 640, "max_fps": 30}, data_dir=data_dir)
            fleet.start()
            if identity is not None:  # pinned as after pairing (the demo's local enrolment), before the first connect
                for address, _name, device_id, state in listed:
                    fleet.pin_device(device_id, device_certificate(state), "admin", str(address))
            grid = DeviceGrid()
            grid.resize(1280, 1000)
            grid.show()
            states = [fleet.add_manual(address) for address, _name, _id, _state in listed]
            for state in states:
                grid.add_device(state)
            run_qt_for(app, 5.0)  # connect, sync clocks, warm up decoders
            deadline = time.monotonic() + 60  # a loaded machine may take longer to connect them all
            while not all(s.frames_received for s in states) and time.monotonic() < deadline:
                run_qt_for(app, 0.5)
            if not all(s.frames_received for s in states):
                raise RuntimeError("not every device streams to the console: "
                                   + "; ".join(f"{s.name}: {s.trust} {s.stream_reason}" for s in states))

            first_address, _name, _id, first_state = listed[0]
            scheme, tls = ("https", pinned_context(identity, first_state)) if identity is not None else ("http", None)
            messages = asyncio.run(_collect_messages(f"{scheme}://{first_address}/v1/stream?max_width=640", 60, tls))
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
            net0, decode0 = thread_cpu_s("console-network"), thread_cpu_s("console-decode")
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            run_qt_for(app, seconds)
            busy = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)
            network_cpu = thread_cpu_s("console-network") - net0
            decoder_cpu = thread_cpu_s("console-decode") - decode0
            probe.stop()

            painted = [v for c in grid.tiles.values() for v in c.paint_latencies_ms]
            received = sum(s.frames_received for s in states) - frames_before
            telemetry_fps = [s.latest_sample.get("fps_streamed") for s in states if s.latest_sample]
            offsets = [s.clock_offset for s in states if s.clock_offset is not None]
            receive_to_paint = [v for c in grid.tiles.values() for v in c.receive_to_paint_ms]
        finally:
            if grid is not None:
                grid.detach()
            if fleet is not None:
                fleet.close()
            devices.stop()
        first = decode_frame_message(messages[0])[0]
        result = {
            "tls": identity is not None,
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
            # CPU per frame the console received, on its network thread (WebSocket, TLS, frame ring; also the
            # sessions' pings and telemetry) and on its decoder threads
            "network_thread_cpu_ms_per_frame": round(network_cpu / max(received, 1) * 1e3, 3),
            "decoder_threads_cpu_ms_per_frame": round(decoder_cpu / max(received, 1) * 1e3, 3),
        }
    result.update(measure_decode_path(messages))
    receive_decode = result["network_thread_cpu_ms_per_frame"] + result["console_decode_cpu_ms"]
    result["receive_decode_cpu_ms"] = round(receive_decode, 3)
    result["receive_decode_ratio"] = round(receive_decode / result["bare_imdecode_cpu_ms"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--listing-devices", type=int, default=20)
    parser.add_argument("--skip-listing", action="store_true")
    add_tls_argument(parser)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    guard_signal_emit_refcount()
    summary: dict = {"benchmark": "console", "tls": args.tls, "cpu_count": os.cpu_count(),
                     "threads_at_start": threading.active_count()}
    with tempfile.TemporaryDirectory(prefix="bench-console-data-") as tmp:
        data_dir = Path(tmp)  # the console's data folder for this run: identity, pins, databases
        identity = bench_console_identity(data_dir) if args.tls else None
        grid = measure_grid(app, args.seconds, data_dir, identity)
        print(json.dumps(grid), flush=True)
        summary["grid"] = grid
        if not args.skip_listing:
            listing = measure_listing(app, args.listing_devices, data_dir, identity)
            print(json.dumps(listing), flush=True)
            summary["listing"] = listing
    summary["goal_decode_ratio_le_1_5"] = grid["decode_ratio"] <= 1.5
    summary["goal_receive_decode_ratio_le_1_5"] = grid["receive_decode_ratio"] <= 1.5
    summary["goal_capture_to_paint_p50_lt_50ms"] = grid["capture_to_paint_p50_ms"] < 50
    if "listing" in summary:
        listed = summary["listing"]["listed_s"]
        summary["goal_20_devices_listed_lt_3s"] = listed is not None and listed < 3
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
