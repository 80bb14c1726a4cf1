"""The release views' access to the console database's rollout and audit-head tables, and to the console's audit
log file (Qt-free).

Everything runs on the console store's own lane (`StoreWorker.LANE`): one thread holds every connection to the
console database. Two threads opening the same fresh SQLite file at once race to switch it to WAL and to create
their tables, and the loser gets "database is locked" (the device store then reports the database unusable).
One thread, in submission order, cannot race. `RolloutStore` and `AuditHeads` hold a SQLite connection, which
belongs to the thread that opened it: both are opened and used there.

The rollout runner (on the network loop) saves through `save_async`, which snapshots the rollout on the loop
first, so the lane never reads an object the loop is changing. `close()` queues the connections' closing behind
the writes already submitted; the lane itself is joined by the runtime when the console closes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from edge_console.client.releases.audit_merge import AuditHeads
from edge_console.client.releases.rollout import Rollout, RolloutStore
from edge_console.client.store import StoreWorker
from edge_console.client.tasks import Task, TaskManager

T = TypeVar("T")


class DatabaseClosed(RuntimeError):
    """The console is shutting down: its database lane takes no more work."""


class ReleaseDb:
    def __init__(self, database: Path, tasks: TaskManager) -> None:
        self.database = database
        self._tasks = tasks
        self._rollouts: RolloutStore | None = None
        self._heads: AuditHeads | None = None
        self._closed = False  # no more work taken (GUI thread)
        self._shut = False  # the connections are closed (lane thread)

    # -- on the lane's thread ---------------------------------------------------------------------------------------
    def rollouts(self) -> RolloutStore:
        if self._shut:
            raise DatabaseClosed("the release views are closed")
        if self._rollouts is None:
            self._rollouts = RolloutStore(self.database)
        return self._rollouts

    def heads(self) -> AuditHeads:
        if self._shut:
            raise DatabaseClosed("the release views are closed")
        if self._heads is None:
            self._heads = AuditHeads(self.database)
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
        """Close the connections once the writes already queued are done (without waiting here)."""
        if self._closed:
            return
        self._closed = True

        def shut(db: Any) -> None:
            db._shut = True
            if db._rollouts is not None:
                db._rollouts.close()
            if db._heads is not None:
                db._heads.db.close()

        self.submit(shut)
