"""Run one agent: `serving(config)` starts everything and yields once it listens and is announced; `serve` runs
it until SIGTERM/SIGINT (or until its parent process is gone). Tests use `serving` too: one code path."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from edge_console.agent import sd_notify
from edge_console.agent.api.access import Access
from edge_console.agent.api.connections import ConnectionGuard, GuardedAppRunner
from edge_console.agent.api.server import agent_access, build_app
from edge_console.agent.config import AgentConfig
from edge_console.agent.discovery import host_ipv4_addresses
from edge_console.agent.runtime import Agent
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.trust.tls_identity import certificate_fingerprint, peer_certificate, server_context

log = logging.getLogger(__name__)


class BindError(EdgeConsoleError):
    """The agent cannot listen where it was told to; the message says which flag to change."""


@dataclass(frozen=True)
class ServingAgent:
    agent: Agent
    port: int
    addresses: list[str]  # what is advertised and printed
    app: web.Application

    @property
    def url(self) -> str:
        scheme = "http" if self.agent.config.insecure_lab_mode else "https"
        return f"{scheme}://{self.addresses[0]}:{self.port}"

    def announcement(self) -> str:
        """The line `edge-agent run` prints once it serves (the simulator and the demo read it)."""
        agent = self.agent
        fingerprint = f" fp={agent.identity.fingerprint}" if agent.identity else ""
        return f"edge-agent listening on {self.url} name={agent.name} id={agent.id}{fingerprint}"


def _bind_error(host: str, port: int, exc: OSError) -> BindError:
    if exc.errno == errno.EADDRINUSE:
        return BindError(f"port {port} on {host} is already in use (another agent?). Choose another with --port "
                         "(or port = ... in the config file), or stop the program using it.")
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL) or isinstance(exc, OSError) and exc.errno is None:
        return BindError(f"cannot listen on {host}: this host has no such address. Check --interface (or "
                         "interfaces = [...] in the config file): give an IPv4 address of this host.")
    if exc.errno == errno.EACCES:
        return BindError(f"not allowed to listen on port {port}: ports below 1024 need privileges. Use --port 8470.")
    return BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _paired_console(access: Access):
    """Whether a TLS connection's client certificate is a paired console's (the guard keeps the others apart)."""
    def paired(transport: asyncio.BaseTransport) -> bool:
        cert = peer_certificate(transport.get_extra_info("ssl_object"))
        return cert is not None and access.trust.by_fingerprint(certificate_fingerprint(cert)) is not None
    return paired


@contextlib.asynccontextmanager
async def serving(config: AgentConfig, guard: ConnectionGuard | None = None) -> AsyncIterator[ServingAgent]:
    agent = Agent(config)  # loads the model: a bad model fails here, before anything listens
    guard = guard or ConnectionGuard.within_descriptor_limit()
    access = agent_access(agent)
    if agent.identity is not None:
        access.ssl_context = server_context(agent.identity, [])
        access.sync_trust()
        guard.is_paired = _paired_console(access)
    # With TLS the sites listen in plain TCP and the guard's server does the TLS itself (tls_gate.py).
    runner = GuardedAppRunner(build_app(agent, guard, access), guard, tls=access.ssl_context, handle_signals=False,
                              shutdown_timeout=2.0)
    await runner.setup()
    try:
        port = config.port
        for host in config.interfaces or ["0.0.0.0"]:
            try:
                await web.TCPSite(runner, host, port, backlog=guard.backlog).start()
            except OSError as exc:
                raise _bind_error(host, port, exc) from None
            port = port or runner.addresses[-1][1]  # --port 0: every interface shares the first free port
        addresses = config.interfaces or host_ipv4_addresses()
        await agent.advertise(addresses, port)
        yield ServingAgent(agent, port, addresses, runner.app)
    finally:
        await runner.cleanup()


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # A simulator killed with SIGKILL cannot stop its children; they notice they were orphaned instead.
    while os.getppid() == pid:
        await asyncio.sleep(1.0)
    stop.set()


async def _serve(config: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(config.parent_pid, stop)) if config.parent_pid else None
    try:
        async with serving(config) as served:
            print(served.announcement(), flush=True)
            _say_how_to_pair(served.agent)
            sd_notify.ready(served.announcement())
            await stop.wait()
    finally:
        sd_notify.stopping()
        if watcher:
            watcher.cancel()


def _say_how_to_pair(agent: Agent) -> None:
    """On a device nobody has paired with yet, open an admin code and print it on the device's own terminal
    (and so its journal): the one place the code is meant to be read. It never goes over the network."""
    if agent.config.insecure_lab_mode:
        log.warning("INSECURE LAB MODE: plain HTTP, no pairing, every route open to anyone on the network. "
                    "Never use this on a site.")
        return
    if agent.trust.pairings():
        return
    code = agent.trust.open_code() or agent.trust.issue_code("admin")
    print(f"edge-agent: no console is paired yet. Pairing code for an admin console: {code.code[:4]}-{code.code[4:]}"
          f" (valid until {time.strftime('%H:%M', time.localtime(code.expires_at))}; `edge-agent pair --role "
          "operator` opens another)", flush=True)


def serve(config: AgentConfig) -> int:
    asyncio.run(_serve(config))
    return 0
