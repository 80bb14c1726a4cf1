"""The owner of the console's threads and shared sessions, apart from any device or widget.

One network loop thread (every device session, mDNS, the Compare panels' device traffic), one HTTP client on it,
a small pool that decodes preview frames, the task manager (background jobs, the database's serial lane) and the
database worker. Whoever creates the runtime closes it; `close()` joins every thread it started, so a test that
forgets nothing leaves nothing running. Qt-free: results reach the GUI through the `post` it is given.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import cv2

from edge_console.client.net.loop_thread import NetworkLoop
from edge_console.client.store import StoreWorker
from edge_console.client.tasks import Post, TaskManager
from edge_console.client.trust_store import ConsoleTrust, default_data_dir

DECODE_WORKERS = 2  # frames of several devices decode in parallel, one frame per thread


def use_single_threaded_opencv() -> None:
    """Frames are decoded in parallel by the decoder pool, one frame per thread. OpenCV's own worker threads on
    top of that only add hand-offs, and on a laptop whose cores are busy they stall: cvtColor of one 640x480 frame
    measured 4.7 ms with OpenCV threads under load against 0.06 ms without (benchmarks/bench_console.py)."""
    cv2.setNumThreads(1)


class ConsoleRuntime:
    def __init__(self, post: Post, database: Path | None = None,
                 on_store_problem: Callable[[str, bool], None] | None = None, data_dir: Path | None = None) -> None:
        self.network = NetworkLoop()
        # The console's identity (key, certificate) and pinned devices: beside the database unless told otherwise.
        self.trust = ConsoleTrust(data_dir or (database.resolve().parent if database else default_data_dir()))
        self.tasks = TaskManager(post, self.network)
        use_single_threaded_opencv()
        self.decode_pool = concurrent.futures.ThreadPoolExecutor(max_workers=DECODE_WORKERS,
                                                                 thread_name_prefix="console-decode")
        self.database = database
        self.store = (StoreWorker(database, self.tasks, on_store_problem or (lambda _message, _resettable: None))
                      if database else None)
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def post(self) -> Post:
        return self.tasks.post

    @property
    def inference_pool(self) -> concurrent.futures.Executor:
        """Where local models run (the Compare panels): never on the network loop, never on the GUI thread."""
        return self.tasks.pool

    def start(self) -> ConsoleRuntime:
        self.network.start()
        return self

    def http(self) -> aiohttp.ClientSession:
        """The one HTTP client of every session, made on first use ON THE LOOP THREAD (aiohttp binds it there)."""
        if self._http is None:
            # Connect timeouts bound WebSocket handshakes too; no total timeout, streams last for hours.
            timeout = aiohttp.ClientTimeout(total=None, connect=3, sock_connect=3)
            self._http = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0))
        return self._http

    def close(self, before_stop: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Run `before_stop` on the loop (closing sessions and discovery), close the HTTP client, stop the loop,
        then the decoders, the background jobs and the database; idempotent."""
        if self._closed:
            return
        self._closed = True

        async def close_all() -> None:
            if before_stop is not None:
                await before_stop()
            if self._http is not None:
                await self._http.close()

        self.network.stop(close_all)
        self.decode_pool.shutdown(wait=True, cancel_futures=True)
        if self.store is not None:
            self.store.close()
        self.tasks.close()
