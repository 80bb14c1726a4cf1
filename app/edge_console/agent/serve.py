"""Run one agent until SIGTERM/SIGINT (or until its parent process is gone), then shut down cleanly."""

from __future__ import annotations

import asyncio
import os
import signal

from aiohttp import web

from .config import AgentConfig
from .discovery import host_ipv4_addresses
from .runtime import Agent
from .server import build_app


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    # A simulator killed with SIGKILL cannot stop its children; they notice they were orphaned instead.
    while os.getppid() == pid:
        await asyncio.sleep(1.0)
    stop.set()


async def _serve(config: AgentConfig) -> None:
    agent = Agent(config)  # loads the model: a bad model fails here, before anything listens
    runner = web.AppRunner(build_app(agent), handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    hosts = config.interfaces or ["0.0.0.0"]
    port = config.port
    for host in hosts:
        await web.TCPSite(runner, host, port).start()
        port = port or runner.addresses[-1][1]  # --port 0: every interface shares the first free port
    advertised = config.interfaces or host_ipv4_addresses()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(config.parent_pid, stop)) if config.parent_pid else None
    try:
        await agent.start(advertised, port)
        print(f"edge-agent listening on http://{advertised[0]}:{port} name={agent.name} id={agent.id}", flush=True)
        await stop.wait()
    finally:
        if watcher:
            watcher.cancel()
        await agent.stop()
        await runner.cleanup()


def serve(config: AgentConfig) -> int:
    asyncio.run(_serve(config))
    return 0
