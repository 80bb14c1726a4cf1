"""The built-in demo: a simulated fleet of agents on 127.0.0.1 that lives exactly as long as the console.

The fleet is the agent's own `simulate` command in a child process (real agents, real HTTP, WebSocket and
mDNS), bound to the loopback interface so a demo never announces anything on the site's network. What only the
demo needs lives here too: listing only the demo's own devices (`DemoOnlyDiscovery`), and adding them by address
when mDNS on loopback finds none (`follow_demo_fleet`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.mdns_browser import DiscoveredService

if TYPE_CHECKING:
    from edge_console.client.tasks import TaskManager
    from edge_console.console.discovery import DeviceDiscovery
    from edge_console.console.fleet import Fleet

DEMO_INTERFACE = "127.0.0.1"
RECHECK_MS = 500  # how often announcements held back are offered again (the simulator may name them later)
MDNS_GRACE_MS = 6000  # after this long without a demo device found through mDNS, add them by address
_LISTENING = re.compile(r"listening on https?://(?P<host>[^:\s/]+):(?P<port>\d+)(?: name=(?P<name>.*?))?"
                        r"(?: id=(?P<id>[0-9a-f]+))?(?: fp=(?P<fp>[0-9a-f]{64}))?$", re.MULTILINE)
PIN_CHECK_MS = 500  # how often the simulator's log is read for devices to pin, until all are pinned


class SimulatedFleet:
    """`python -m edge_console.agent.cli simulate --count N --interface 127.0.0.1`, with its output in a log file.

    Output goes to a file rather than a pipe so no reader thread is needed and a chatty child can never block on
    a full pipe. The child runs in its own process group, so stopping it also reaches its agents.
    """

    def __init__(self, count: int = 3, fps: float = 15.0, base_dir: Path | None = None,
                 console_certificate: Path | None = None) -> None:
        self.count = count
        self.console_certificate = console_certificate  # the demo console, enrolled on every simulated device
        self.fps = fps
        self._own_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="edge-console-demo-"))
        self.log_path = self.base_dir / "simulate.log"
        self._process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        enrol = ["--enrol-console", str(self.console_certificate)] if self.console_certificate else []
        return [sys.executable, "-m", "edge_console.agent.cli", "simulate", "--count", str(self.count),
                "--interface", DEMO_INTERFACE, "--base-dir", str(self.base_dir / "devices"), "--fps", str(self.fps),
                *enrol]

    def device_states(self) -> list[Path]:
        return [self.base_dir / "devices" / f"device-{i + 1}" for i in range(self.count)]

    def fingerprints(self) -> list[tuple[DeviceAddress, str]]:
        """(address, certificate fingerprint) of every device that has said it serves."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [(DeviceAddress(m["host"], int(m["port"])), m["fp"]) for m in _LISTENING.finditer(text) if m["fp"]]

    def start(self) -> SimulatedFleet:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def listening(self) -> list[tuple[DeviceAddress, str, str]]:
        """The devices that have said they are serving so far: (address, name, id)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [(DeviceAddress(m["host"], int(m["port"])), (m["name"] or "").strip(), m["id"] or "")
                for m in _LISTENING.finditer(text)]

    def device_ids(self) -> set[str]:
        """Ids of this fleet's devices that have started, so the demo can ignore other loopback agents (a shared
        development machine may run other people's simulators on 127.0.0.1 too)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return set()
        return {m["id"] for m in _LISTENING.finditer(text) if m["id"]}

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # simulate stops its agents on SIGTERM
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(5)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


class DemoOnlyDiscovery(QObject):
    """Stands between mDNS discovery and the fleet and passes on only the demo's own devices.

    A shared development machine may run other people's simulators on 127.0.0.1 too; those are held back. The
    demo's device ids come from the simulator's log, read on the task pool (never on the GUI thread) every
    RECHECK_MS; an announcement may arrive before its id is printed, so held-back ones are offered again then.
    """

    found = Signal(object)  # DiscoveredService of one of the demo's devices
    removed = Signal(str)
    failed = Signal(str)

    def __init__(self, discovery: DeviceDiscovery, simulated: SimulatedFleet, tasks: TaskManager) -> None:
        super().__init__(discovery)
        self._discovery = discovery
        self._simulated = simulated
        self._tasks = tasks
        self._ids: set[str] = set()
        self._reading = False
        self._held: dict[str, DiscoveredService] = {}
        discovery.found.connect(self._offer)
        discovery.removed.connect(self._on_removed)
        discovery.failed.connect(self.failed)
        self._recheck = QTimer(self, interval=RECHECK_MS)
        self._recheck.timeout.connect(self._read_ids)

    @property
    def description(self) -> str:
        return self._discovery.description + " (demo devices only)"

    def start(self) -> None:
        self._recheck.start()
        self._read_ids()
        self._discovery.start()

    async def aclose(self) -> None:  # on the network loop: the timer stays (a Qt timer stops on its own thread)
        await self._discovery.aclose()

    def _read_ids(self) -> None:
        if not self._reading:
            self._reading = True
            self._tasks.run(lambda _task: self._simulated.device_ids(), on_done=self._ids_read,
                            on_failed=lambda _exc: setattr(self, "_reading", False))

    def _ids_read(self, ids: set[str]) -> None:
        self._reading = False
        self._ids = ids
        if len(ids) >= self._simulated.count:
            self._recheck.stop()  # every demo device has its id: nothing more to learn from the log
        for service in list(self._held.values()):
            self._offer(service)

    def _offer(self, service: DiscoveredService) -> None:
        if service.device_id in self._ids:
            self._held.pop(service.service_name, None)
            self.found.emit(service)
        else:
            self._held[service.service_name] = service

    def _on_removed(self, service_name: str) -> None:
        if self._held.pop(service_name, None) is None:
            self.removed.emit(service_name)


def pin_demo_devices(fleet: Fleet, simulated: SimulatedFleet) -> None:
    """Pin each simulated device as it starts, by the certificate fingerprint the simulator printed (a local
    enrolment on this machine: no code to type in the demo). The fleet fetches the certificate and compares."""
    pinned: set[str] = set()
    timer = QTimer(fleet, interval=PIN_CHECK_MS)

    def check() -> None:
        fleet.runtime.tasks.run(lambda _task: simulated.fingerprints(), on_done=pin_new)

    def pin_new(found: list[tuple[DeviceAddress, str]]) -> None:
        for address, fingerprint in found:
            if fingerprint not in pinned:
                pinned.add(fingerprint)
                fleet.pin_by_fingerprint(address, fingerprint, "admin")
        if len(pinned) >= simulated.count or not simulated.running:
            timer.stop()

    timer.timeout.connect(check)
    timer.start()


def prepare_demo_release(fleet: Fleet, simulated: SimulatedFleet) -> None:
    """A parts-v2 release signed by a throwaway authority, trusted by the simulated devices and imported into the
    demo console's release library, so a new user can push it, watch the probation and roll back (built in the
    background: it runs its golden set)."""
    data_dir = fleet.database.parent

    def build(_task) -> str:
        from edge_console.bundle.demo import make_demo_release
        from edge_console.client.releases.library import ReleaseLibrary
        from edge_console.core.releases.trust import install_root

        demo = make_demo_release(simulated.base_dir / "release")
        for state in simulated.device_states():
            install_root(state / "release-trust", demo.root_json.read_bytes())
        library = ReleaseLibrary(data_dir)
        library.trust(demo.root_json.read_bytes())
        return library.import_release(demo.release).label

    fleet.runtime.tasks.run(build, on_done=lambda label: fleet.message.emit(f"demo release {label} is in Releases"),
                            on_failed=lambda exc: fleet.message.emit(f"the demo release could not be made: {exc}"))


def follow_demo_fleet(fleet: Fleet, simulated: SimulatedFleet) -> None:
    """If mDNS has found none of the demo's devices after a few seconds (some containers have no multicast on
    loopback), add them by the addresses the simulator printed, and say so."""
    def check() -> None:
        if not any(state.announced for state in fleet.states):
            fleet.runtime.tasks.run(lambda _task: (simulated.listening(), simulated.running, simulated.log_tail(3)),
                                    on_done=add_by_address)

    def add_by_address(found: tuple[list[tuple[DeviceAddress, str, str]], bool, str]) -> None:
        listed, running, log_tail = found
        if any(state.announced for state in fleet.states):
            return  # found through mDNS meanwhile
        for address, _name, _id in listed:
            fleet.add_manual(address)
        if listed:
            fleet.message.emit("mDNS found no demo device on 127.0.0.1; added them by address instead")
        elif not running:
            fleet.message.emit("the simulated fleet stopped: " + log_tail)

    QTimer.singleShot(MDNS_GRACE_MS, fleet, check)
    pin_demo_devices(fleet, simulated)
