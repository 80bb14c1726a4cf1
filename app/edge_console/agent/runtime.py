"""The Agent: one device's parts (source, capture, inference, telemetry, history, discovery) and their lifetimes.

The parts start and stop as aiohttp `cleanup_ctx` services of the API application (`server.build_app`), so the
`edge-agent run` process and the in-process test harness go through one code path (`serve.serving`).
One executor per job: the JPEG encoders have their own pool, the telemetry database its own single thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edge_console.agent import AGENT_VERSION, sd_notify
from edge_console.agent.api.socket_registry import SocketRegistry
from edge_console.agent.config import AgentConfig
from edge_console.agent.discovery import Advertiser
from edge_console.agent.health import Health, SnapshotWindow, assess
from edge_console.agent.history import HistoryService
from edge_console.agent.identity import device_id, hardware, lock_state_dir, read_temperature_c
from edge_console.agent.pipeline.capture import CapturedFrame, CaptureLoop
from edge_console.agent.pipeline.frame_hub import FrameHub
from edge_console.agent.pipeline.inference import InferenceLoop, InferredFrame
from edge_console.agent.pipeline.latest_slot import LatestSlot
from edge_console.agent.pipeline.sources import SourceSpec
from edge_console.agent.pipeline.stats import PipelineStats
from edge_console.agent.supervisor import BackgroundLoops
from edge_console.agent.telemetry import TelemetryHub, TelemetrySampler
from edge_console.agent.trust.device_trust import TrustStore, device_identity
from edge_console.agent.updates import (
    ModelLifecycle,
    ModelStore,
    UpdateManager,
    UploadStore,
    factory_entry,
    run_in_loop,
)
from edge_console.core.audit.anchor import SignedHead, sign_head
from edge_console.core.audit.log import AuditLog
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.model_library import ModelLibrary, read_model
from edge_console.core.disk_reserve import DiskReserve
from edge_console.core.paths import shipped_models_dir
from edge_console.core.protocol import API_VERSION
from edge_console.core.releases.trust import recover_trust

log = logging.getLogger(__name__)
ENCODE_THREADS = 2


class Agent:
    """Everything the device runs. The model is loaded in the constructor so a bad model fails loudly at start."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.state_dir = Path(config.state_dir)
        self._state_lock = lock_state_dir(self.state_dir)  # a second agent on the same state must not start
        try:
            self.id = device_id(self.state_dir)
            self.name = config.name
            self.trust = TrustStore(self.state_dir)
            self.identity = None if config.insecure_lab_mode else device_identity(self.state_dir, self.id)
            self.model_library = ModelLibrary([shipped_models_dir(), *map(Path, config.model_dirs)])
            self.disk_reserve = DiskReserve(self.state_dir)  # room for essential writes on a full disk
            self.audit = AuditLog(self.state_dir / "audit.log")
            self.updates = self._update_manager(self.model_library.resolve(config.model))
            self.detector = self.load_detector(self.updates.running.path)
        except BaseException:
            self._state_lock.close()
            raise
        # The machine does not change while the agent runs: read /proc/cpuinfo and friends once, not per request.
        self._hardware = hardware(self.detector.provider)
        self.source_spec = SourceSpec(config.source, fps=config.fps, width=config.width, height=config.height,
                                      seed=config.seed)
        self.frames: LatestSlot[CapturedFrame] = LatestSlot()
        self.stats = PipelineStats()
        self.capture = CaptureLoop(self.source_spec, self.frames, self.stats)
        self.inference = InferenceLoop(self.frames, self.detector, self.stats, self._on_inferred,
                                       injected_delay_s=config.injected_delay_ms / 1e3)
        self.encode_pool = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="jpeg-encode")
        self.history = HistoryService(self.state_dir / "telemetry.sqlite3")
        self.loops = BackgroundLoops()
        # Every long-lived socket (stream, telemetry, update events): added on open, removed in `finally` (never by
        # the GC), closed when its console's pairing is revoked.
        self.sockets = SocketRegistry()
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self._window = SnapshotWindow()
        self._recent: deque = deque(maxlen=15)  # one snapshot a second: the watchdog's short window
        self._sampler: TelemetrySampler | None = None
        self.temperature_c: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hub: FrameHub | None = None
        self.telemetry: TelemetryHub | None = None
        self.advertiser: Advertiser | None = None

    # ---- models: the running one, and the update manager that changes it -------------------------------------
    def load_detector(self, path: str) -> Detector:
        return Detector(path, provider=self.config.provider, intra_op_threads=self.config.threads)

    def _update_manager(self, factory_path) -> UpdateManager:
        """The model store decides what runs (the factory `--model` until a release is installed)."""
        library_entry = read_model(Path(factory_path))  # a missing or broken file fails here, clearly
        factory = factory_entry(str(factory_path), library_entry.name, library_entry.version, library_entry.sha256)
        lifecycle = ModelLifecycle(ModelStore(self.state_dir), self.audit, factory, self.config.probation_s)
        manager = UpdateManager(self.state_dir, lifecycle, self.audit, AGENT_VERSION, self)
        recover_trust(manager.trust_dir)  # an install of release trust cut short by a crash: the old trust is back
        self.uploads = UploadStore(self.state_dir, manager.trust_dir)
        return manager

    def swap_from_worker(self, detector: Detector) -> None:
        """From the update worker thread: serve `detector` from the next frame, via the event loop."""
        run_in_loop(self._loop, self.swap_model(detector))

    def pipeline_figures(self) -> dict:
        snap = self.stats.snapshot()
        return {"inferred_fps": self.recent_inferred_fps(), "model_errors": snap.model_errors}

    def recent_inferred_fps(self, span_s: float = 5.0) -> float | None:
        recent = [s for s in self._recent if s.at >= time.monotonic() - span_s - 0.5]
        if len(recent) < 2 or recent[-1].at - recent[0].at < 1.0:
            return None
        return (recent[-1].inferred - recent[0].inferred) / (recent[-1].at - recent[0].at)

    async def _updates_tick(self) -> None:
        await asyncio.to_thread(self.updates.take_inbox)
        snap = self.stats.snapshot()
        self.updates.watch(self.recent_inferred_fps(), snap.model_errors, snap.model_error is not None,
                           snap.source_error is None)
        await asyncio.to_thread(self.uploads.expire)
        if not self.disk_reserve.held:
            await asyncio.to_thread(self.disk_reserve.make)  # again, once the disk has room

    # ---- facts the API serves -------------------------------------------------------------------------------
    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started_monotonic

    def info(self) -> dict:
        return {
            **self.public_info(),
            "agent_version": AGENT_VERSION,
            # Only for paired consoles: a stranger is not told when a code is open to guess at.
            "pairing_code_open": self.trust.open_code() is not None,
            "hardware": {**self._hardware, "provider": self.detector.provider},
            "model": self.detector.describe(self._frame_size()),
            "source": self.source_spec.describe(),
            "started_at": self.started_at,
            "uptime_s": round(self.uptime_s, 1),
        }

    def public_info(self) -> dict:
        """What anyone may learn before pairing: who the device is (as its mDNS announcement says, less the model),
        its certificate's fingerprint to compare by eye, and nothing of its pairing state."""
        return {
            "id": self.id,
            "name": self.name,
            "api_version": API_VERSION,
            "fingerprint": self.identity.fingerprint if self.identity else None,
            "insecure_lab_mode": self.config.insecure_lab_mode,
        }

    def signed_audit_head(self) -> SignedHead | None:
        """The audit chain's head signed with this device's identity key (core/audit/anchor.py)."""
        if self.identity is None:
            return None
        seq, head = self.audit.last()
        return sign_head(self.identity.key_path.read_bytes(), self.id, seq, head, self.identity.passphrase)

    def _frame_size(self) -> tuple[int, int] | None:
        """The camera's frame size as last seen (the model's input size used depends on it)."""
        latest = self.inference.latest
        return (latest.image.shape[1], latest.image.shape[0]) if latest is not None else None

    def health(self) -> Health:
        return assess(self.stats.snapshot(), self._window.oldest(), self._started_monotonic, self.temperature_c,
                      self.loops.problems(), self.history.notices() + self._disk_notices())

    def _disk_notices(self) -> list[str]:
        if self.disk_reserve.released_at_least_once and not self.disk_reserve.held:
            return ["disk full: the reserve kept for pairings, update records and the audit log is in use; free "
                    "space on the device"]
        return []

    def txt_record(self) -> dict[str, str]:
        spec = self.detector.spec
        txt = {"id": self.id, "name": self.name, "api": str(API_VERSION), "model": spec.name,
               "model_version": spec.version, "arch": self._hardware["arch"]}
        if self.identity is not None:
            txt["fp"] = self.identity.short_fingerprint  # a hint to compare by eye; the pin is what proves
        else:
            txt["insecure"] = "1"
        return txt

    # ---- services: aiohttp cleanup_ctx generators, started in this order and stopped in reverse --------------
    async def state_service(self, app) -> AsyncIterator[None]:
        """Holds the state folder's lock until everything else has stopped, and the disk reserve meanwhile."""
        await asyncio.to_thread(self.disk_reserve.make)
        self.disk_reserve.register()
        try:
            yield
        finally:
            self.disk_reserve.unregister()
            self._state_lock.close()

    async def pipeline_service(self, app) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self.hub = FrameHub(self.encode_pool)
        self.capture.start()
        self.inference.start()
        try:
            yield
        finally:
            self.capture.stop()
            self.inference.stop()
            await asyncio.to_thread(self.capture.join, 5)
            await asyncio.to_thread(self.inference.join, 5)
            self.encode_pool.shutdown(wait=True, cancel_futures=True)

    async def history_service(self, app) -> AsyncIterator[None]:
        await self.history.open()
        try:
            yield
        finally:
            await self.history.close()

    async def telemetry_service(self, app) -> AsyncIterator[None]:
        self.telemetry = TelemetryHub()
        self._sampler = TelemetrySampler()
        self.loops.start("telemetry", self._telemetry_tick, 1.0)
        self.loops.start("model updates", self._updates_tick, 1.0)
        try:
            yield
        finally:
            await self.loops.stop()
            await asyncio.to_thread(self.updates.close)
            await asyncio.to_thread(self.uploads.close)

    async def on_shutdown(self, app) -> None:
        """First step of a shutdown: say goodbye on mDNS, then close every socket (clients reconnect elsewhere)."""
        if self.advertiser:
            with contextlib.suppress(Exception):
                await self.advertiser.stop()  # unregister first: consoles learn at once that we are going
        await self.sockets.close_all()

    async def advertise(self, addresses: list[str], port: int) -> None:
        """Announce the device once its sockets listen (the port is known only then)."""
        if self.config.advertise:
            self.advertiser = Advertiser(self.config.interfaces or None, addresses, port, self.name, self.id,
                                         self.txt_record())
            await self.advertiser.start()

    async def swap_model(self, detector: Detector) -> None:
        """Serve `detector` from the next frame on, without stopping capture or dropping stream clients."""
        self.inference.swap_detector(detector)
        self.detector = detector
        if self.advertiser:
            await self.advertiser.update(self.txt_record())

    # ---- internals --------------------------------------------------------------------------------------------
    def _on_inferred(self, frame: InferredFrame) -> None:
        # Called on the inference thread: hand over to the event loop, never touch asyncio objects here.
        loop = self._loop
        if loop is not None and self.hub is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closing during shutdown
                loop.call_soon_threadsafe(self.hub.publish, frame)

    async def _telemetry_tick(self) -> None:
        self.temperature_c = await asyncio.to_thread(read_temperature_c)
        snapshot = self.stats.snapshot()
        self._window.add(snapshot)
        self._recent.append(snapshot)
        process = await asyncio.to_thread(self._sampler.process_figures)
        sample = self._sampler.sample(snapshot, self.health(), self.temperature_c, self.uptime_s, process)
        # Which model gave these figures: a console sees a switch (a rollout, a rollback, a USB install, the
        # watchdog) within a second, and reads /v1/info again.
        sample["model_sha256"] = self.detector.spec.sha256
        self.telemetry.publish(sample)
        await self.history.add(sample)
        sd_notify.watchdog()  # the loop is alive: a hung event loop stops these and systemd restarts the agent
