"""The release views' access to the console database's rollout and audit-head tables, and to the console's audit
log file (Qt-free).

Everything runs on the console store's own lane (`StoreWorker.LANE`), on the one connection the store worker owns
there (client/storage/): one thread, in submission order, cannot race another to switch a fresh file to WAL or to
upgrade its schema. A SQLite connection belongs to the thread that opened it, so `RolloutStore` and `AuditHeads` are
made and used on the lane, and made again when the worker hands out a new connection (after the unreadable file was
moved aside for a fresh one: the old connection is closed, and rows go to the new file).

The rollout runner (on the network loop) saves through `save_async`, which snapshots the rollout on the loop
first, so the lane never reads an object the loop is changing. `close()` queues the connections' closing behind
the writes already submitted; the store worker closes the connection itself, and the runtime joins the lane.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from edge_console.client.releases.audit_merge import AuditHeads
from edge_console.client.releases.rollout import Rollout, RolloutStore
from edge_console.client.storage.database import ConsoleDatabase
from edge_console.client.store import StoreWorker
from edge_console.client.tasks import Task, TaskManager

T = TypeVar("T")


class DatabaseClosed(RuntimeError):
    """The console is shutting down: its database lane takes no more work."""


class ReleaseDb:
    def __init__(self, store: StoreWorker, tasks: TaskManager) -> None:
        self.store = store  # owner of the lane's connection
        self.database = store.path
        self._tasks = tasks
        self._rollouts: RolloutStore | None = None
        self._heads: AuditHeads | None = None
        self._closed = False  # no more work taken (GUI thread)
        self._shut = False  # the connections are closed (lane thread)

    # -- on the lane's thread ---------------------------------------------------------------------------------------
    def _connection(self) -> ConsoleDatabase:
        """sqlite3.DatabaseError when the file cannot be used (the store worker has said so, once)."""
        database = None if self._shut else self.store.database()
        if database is None:
            raise DatabaseClosed("the release views are closed")
        return database

    def rollouts(self) -> RolloutStore:
        database = self._connection()
        if self._rollouts is None or self._rollouts.database is not database:
            self._rollouts = RolloutStore(database)
        return self._rollouts

    def heads(self) -> AuditHeads:
        database = self._connection()
        if self._heads is None or self._heads.database is not database:
            self._heads = AuditHeads(database)
        return self._heads

    # -- from anywhere ------------------------------------------------------------------------------------------------
    def submit(self, fn: Callable[[ReleaseDb], T]) -> concurrent.futures.Future[T]:
        """Run `fn(db)` on the lane, after everything submitted before; its outcome is the future's."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job(_task: Task) -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(self))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

        task = self._tasks.run(job, lane=StoreWorker.LANE)
        if task.abandoned and task.done:  # refused: the task manager is closed
            future.set_exception(DatabaseClosed("the console is closing; nothing more is written"))
        return future

    def call(self, fn: Callable[[ReleaseDb], T], post: Callable[..., None], on_done: Callable[[T], None],
             on_failed: Callable[[BaseException], None] | None = None) -> None:
        """Run `fn(db)` on the lane; its result (or error) reaches the GUI thread through `post`."""
        def finished(future: concurrent.futures.Future[T]) -> None:
            error = future.exception()
            if error is None:
                post(on_done, future.result())
            elif on_failed is not None and not isinstance(error, DatabaseClosed):
                post(on_failed, error)

        self.submit(fn).add_done_callback(finished)

    async def run(self, fn: Callable[[ReleaseDb], T]) -> T:
        """From a coroutine: run `fn(db)` on the lane and await it."""
        return await asyncio.wrap_future(self.submit(fn))

    async def save_async(self, rollout: Rollout) -> None:
        snapshot = Rollout.from_dict(rollout.to_dict())  # taken on the loop, where the rollout changes
        try:
            await self.run(lambda db: db.rollouts().save(snapshot))
        except DatabaseClosed:
            pass  # the console closed under a running rollout: it stays as last saved, resumable

    def close(self) -> None:
        """Take no more work once the writes already queued are done (without waiting here); the connection is the
        store worker's to close."""
        if self._closed:
            return
        self._closed = True

        def shut(db: Any) -> None:
            db._shut = True
            db._rollouts = db._heads = None

        self.submit(shut)
