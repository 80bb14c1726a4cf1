"""Run one agent: `serving(config)` starts everything and yields once it listens and is announced; `serve` runs
it until SIGTERM/SIGINT (or until its parent process is gone). Tests use `serving` too: one code path."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from edge_console.core.errors import EdgeConsoleError

from .config import AgentConfig
from .connections import ConnectionGuard, GuardedAppRunner
from .discovery import host_ipv4_addresses
from .runtime import Agent
from .server import build_app


class BindError(EdgeConsoleError):
    """The agent cannot listen where it was told to; the message says which flag to change."""


@dataclass(frozen=True)
class ServingAgent:
    agent: Agent
    port: int
    addresses: list[str]  # what is advertised and printed

    @property
    def url(self) -> str:
        return f"http://{self.addresses[0]}:{self.port}"


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


@contextlib.asynccontextmanager
async def serving(config: AgentConfig, guard: ConnectionGuard | None = None) -> AsyncIterator[ServingAgent]:
    agent = Agent(config)  # loads the model: a bad model fails here, before anything listens
    guard = guard or ConnectionGuard()
    runner = GuardedAppRunner(build_app(agent, guard), guard, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        port = config.port
        for host in config.interfaces or ["0.0.0.0"]:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise _bind_error(host, port, exc) from None
            port = port or runner.addresses[-1][1]  # --port 0: every interface shares the first free port
        addresses = config.interfaces or host_ipv4_addresses()
        await agent.advertise(addresses, port)
        yield ServingAgent(agent, port, addresses)
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
            agent = served.agent
            print(f"edge-agent listening on {served.url} name={agent.name} id={agent.id}", flush=True)
            await stop.wait()
    finally:
        if watcher:
            watcher.cancel()


def serve(config: AgentConfig) -> int:
    asyncio.run(_serve(config))
    return 0
