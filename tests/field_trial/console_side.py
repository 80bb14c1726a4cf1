"""The console's side of the site, headless, in the console's namespace:

- `NetnsLoop`: an asyncio loop on a thread that entered the console's network namespace (namespaces are per
  thread), where the console's own Qt-free network layer runs: `MdnsBrowser`, `device_access.reach`,
  `DeviceSession`, `releases.push`. Threads it starts (executors) inherit the namespace and are daemons.
- `Console.cli(...)`: `edge-console` release/pair/push/rollback/audit commands, as processes in that namespace.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_access import DeviceAccess, reach
from edge_console.client.trust_store import ConsoleTrust, PinStore, TlsContexts, console_identity
from tests.support.agent_harness import ROOT

from .netns import Site, setns

CONSOLE_CLI = [sys.executable, "-m", "edge_console.client.releases.cli"]


class NetnsLoop:
    """An event loop running on a daemon thread inside network namespace `ns`."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"netns {ns}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            setns(self.ns)
            self.loop = asyncio.new_event_loop()
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coro, timeout: float = 120.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    json: dict | list | None = field(default=None)


class Console:
    """The site's laptop: a data folder (identity, pins, release library, rollouts, audit) and a namespace."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.data_dir = site.dir / "console"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.loop = NetnsLoop(site.console_ns)
        self._identity = None
        self._contexts: TlsContexts | None = None

    # -- the edge-console command line, in the console's namespace --------------------------------------------
    def cli(self, *args: str, timeout: float = 300.0, check: bool = False) -> CliResult:
        t0 = time.monotonic()
        proc = subprocess.run([*self.site.exec_prefix(self.site.console_ns), *CONSOLE_CLI, "--data-dir",
                               str(self.data_dir), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        result = CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        if last:
            try:
                result.json = json.loads(last[0])
            except ValueError:
                try:
                    result.json = json.loads(proc.stdout)
                except ValueError:
                    pass
        if check and proc.returncode != 0:
            raise RuntimeError(f"edge-console {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return result

    # -- trust -----------------------------------------------------------------------------------------------------
    @property
    def cert_path(self) -> Path:
        return self.data_dir / "identity" / "identity.crt"

    @property
    def contexts(self) -> TlsContexts:
        if self._contexts is None:
            self._identity = console_identity(self.data_dir)
            self._contexts = TlsContexts(self._identity)
        return self._contexts

    def pins(self) -> PinStore:
        return PinStore(self.data_dir / "console.sqlite")

    def pin(self, device) -> None:
        """The console's half of a local enrolment: pin the device's certificate (read from the device)."""
        store = self.pins()
        try:
            store.pin(device.id, device.certificate, "operator", device.host_port)
        finally:
            store.close()

    def trust(self) -> ConsoleTrust:
        """The console's trust as its GUI holds it (identity, contexts, pins), for DeviceSession."""
        trust = ConsoleTrust(self.data_dir)
        store = self.pins()
        try:
            trust.load(store.all())
        finally:
            store.close()
        return trust

    def tls_for(self, device_id: str) -> ssl.SSLContext:
        store = self.pins()
        try:
            pin = store.get(device_id)
        finally:
            store.close()
        assert pin is not None, f"no pin for {device_id}"
        return self.contexts.pinned(pin)

    # -- the Qt-free network layer on the console's loop --------------------------------------------------------
    async def reach(self, host: str, port: int) -> DeviceAccess:
        store = self.pins()
        try:
            async with aiohttp.ClientSession() as session:
                return await reach(session, DeviceAddress(host, port), self.contexts, store.get)
        finally:
            store.close()

    def close(self) -> None:
        self.loop.close()
