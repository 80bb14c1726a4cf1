"""The Agent: wires source, capture, inference, telemetry, history and discovery, and starts/stops them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edge_console.core.detector import Detector
from edge_console.core.model_library import ModelLibrary
from edge_console.core.paths import shipped_models_dir
from edge_console.core.protocol import API_VERSION

from . import AGENT_VERSION
from .capture import CapturedFrame, CaptureLoop
from .config import AgentConfig
from .discovery import Advertiser
from .frame_hub import FrameHub
from .health import Health, assess
from .history import TelemetryHistory
from .identity import device_id, hardware, read_temperature_c
from .latest_slot import LatestSlot
from .pipeline import InferenceLoop, InferredFrame
from .sources import SourceSpec
from .stats import PipelineStats
from .telemetry import TelemetryHub, TelemetrySampler

log = logging.getLogger(__name__)


class Agent:
    """Everything the device runs. The model is loaded in the constructor so a bad model fails loudly at start."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.id = device_id(self.state_dir)
        self.name = config.name
        self.model_library = ModelLibrary([shipped_models_dir(), *map(Path, config.model_dirs)])
        self.detector = Detector(self.model_library.resolve(config.model), provider=config.provider,
                                 intra_op_threads=config.threads)
        # The machine does not change while the agent runs: read /proc/cpuinfo and friends once, not per request.
        self._hardware = hardware(self.detector.provider)
        self.source_spec = SourceSpec(config.source, fps=config.fps, width=config.width, height=config.height,
                                      seed=config.seed)
        self.frames: LatestSlot[CapturedFrame] = LatestSlot()
        self.stats = PipelineStats()
        self.capture = CaptureLoop(self.source_spec, self.frames)
        self.inference = InferenceLoop(self.frames, self.detector, self.stats, self._on_inferred,
                                       injected_delay_s=config.injected_delay_ms / 1e3)
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode")
        self.history = TelemetryHistory(self.state_dir / "telemetry.sqlite3")
        self.websockets: weakref.WeakSet = weakref.WeakSet()
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self._last_inference: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hub: FrameHub | None = None
        self.telemetry: TelemetryHub | None = None
        self.advertiser: Advertiser | None = None
        self._tasks: list[asyncio.Task] = []

    # ---- facts the API serves -------------------------------------------------------------------------------
    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started_monotonic

    def info(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "agent_version": AGENT_VERSION,
            "api_version": API_VERSION,
            "hardware": {**self._hardware, "provider": self.detector.provider},
            "model": {**self.detector.spec.describe(), "layout": self.detector.layout},
            "source": self.source_spec.describe(),
            "started_at": self.started_at,
            "uptime_s": round(self.uptime_s, 1),
        }

    def health(self, temperature_c: float | None = None) -> Health:
        return assess(self.capture.error, self.inference.error, self._last_inference, self._started_monotonic,
                      temperature_c)

    def txt_record(self) -> dict[str, str]:
        spec = self.detector.spec
        return {"id": self.id, "name": self.name, "api": str(API_VERSION), "model": spec.name, "model_version": spec.version,
                "arch": self._hardware["arch"]}

    # ---- lifecycle --------------------------------------------------------------------------------------------
    async def start(self, advertise_addresses: list[str], port: int) -> None:
        self._loop = asyncio.get_running_loop()
        self.hub = FrameHub(self.executor)
        self.telemetry = TelemetryHub()
        self.capture.start()
        self.inference.start()
        self._tasks.append(asyncio.create_task(self._telemetry_loop(), name="telemetry"))
        if self.config.advertise:
            self.advertiser = Advertiser(self.config.interfaces or None, advertise_addresses, port,
                                         self.name, self.id, self.txt_record())
            await self.advertiser.start()

    async def stop(self) -> None:
        if self.advertiser:
            with contextlib.suppress(Exception):
                await self.advertiser.stop()  # unregister first: consoles learn at once that we are going
        # Close every socket at once and give up on clients that do not answer the close handshake.
        closing = [ws.close(code=1001, message=b"agent shutting down") for ws in list(self.websockets)]
        if closing:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.capture.stop()
        self.inference.stop()
        await asyncio.to_thread(self.capture.join, 5)
        await asyncio.to_thread(self.inference.join, 5)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.history.close()

    async def swap_model(self, detector: Detector) -> None:
        """Serve `detector` from the next frame on, without stopping capture or dropping stream clients."""
        self.inference.swap_detector(detector)
        self.detector = detector
        if self.advertiser:
            await self.advertiser.update(self.txt_record())

    # ---- internals --------------------------------------------------------------------------------------------
    def _on_inferred(self, frame: InferredFrame) -> None:
        # Called on the inference thread: hand over to the event loop, never touch asyncio objects here.
        self._last_inference = time.monotonic()
        loop = self._loop
        if loop is not None and self.hub is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closing during shutdown
                loop.call_soon_threadsafe(self.hub.publish, frame)

    async def _telemetry_loop(self) -> None:
        sampler = TelemetrySampler(self)
        next_at = time.monotonic()
        while True:
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            temperature = await asyncio.to_thread(read_temperature_c)
            sample = sampler.sample(self.health(temperature), temperature)
            self.telemetry.publish(sample)
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self.history.add, sample)
            except Exception as exc:  # a full disk must not stop live telemetry
                log.warning("telemetry history: %s", exc)
