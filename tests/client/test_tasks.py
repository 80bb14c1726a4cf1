"""The console's background-work helper without Qt: a plain queue plays the GUI thread's event queue."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from edge_console.client.net.loop_thread import NetworkLoop
from edge_console.client.tasks import TaskCancelled, TaskManager

WAIT_S = 30.0  # a guard against hanging, not a timing assertion


class FakeGuiThread:
    """`post` from any thread; `run_until` runs what was posted, here, in order, like the GUI's event loop."""

    def __init__(self) -> None:
        self.calls: queue.Queue[Callable[[], Any]] = queue.Queue()
        self.thread = threading.current_thread()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        self.calls.put(lambda: fn(*args))

    def run_until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, "gave up waiting"
            try:
                self.calls.get(timeout=0.01)()
            except queue.Empty:
                pass

    def drain(self) -> None:
        while not self.calls.empty():
            self.calls.get_nowait()()


@pytest.fixture
def gui_and_tasks():
    gui = FakeGuiThread()
    network = NetworkLoop()
    network.start()
    tasks = TaskManager(gui.post, network)
    yield gui, tasks
    network.stop()
    tasks.close()


def test_results_and_progress_arrive_on_the_gui_thread(gui_and_tasks):
    gui, tasks = gui_and_tasks
    seen: list[tuple[str, object, threading.Thread]] = []

    def job(task) -> int:
        for i in range(3):
            task.report_progress(i + 1, 3)
        return threading.get_ident()

    tasks.run(job, on_done=lambda r: seen.append(("done", r, threading.current_thread())),
              on_progress=lambda i, n: seen.append(("progress", (i, n), threading.current_thread())))
    gui.run_until(lambda: any(kind == "done" for kind, _, _ in seen))
    assert [what for kind, what, _ in seen if kind == "progress"] == [(1, 3), (2, 3), (3, 3)]
    job_thread = next(what for kind, what, _ in seen if kind == "done")
    assert job_thread != threading.get_ident()  # the job ran elsewhere...
    assert all(thread is gui.thread for _, _, thread in seen)  # ...and every callback here


def test_a_lane_runs_its_jobs_in_order_on_one_thread(gui_and_tasks):
    gui, tasks = gui_and_tasks
    order: list[int] = []
    threads: set[int] = set()
    gate = threading.Event()

    def job(i: int) -> Callable:
        def run(_task) -> None:
            if i == 0:
                gate.wait(WAIT_S)  # the first job is slow: the others must still wait for it
            order.append(i)
            threads.add(threading.get_ident())
        return run

    last = [tasks.run(job(i), lane="db") for i in range(20)][-1]
    gate.set()
    assert last.wait(WAIT_S)
    assert order == list(range(20)) and len(threads) == 1


def test_failures_go_to_on_failed_and_cancel_still_reports_how_it_ended(gui_and_tasks):
    gui, tasks = gui_and_tasks
    outcomes: list[object] = []
    tasks.run(lambda _t: 1 / 0, on_failed=outcomes.append)
    started = threading.Event()

    def stoppable(task) -> str:
        started.set()
        while not task.cancel_event.wait(0.01):
            pass
        task.raise_if_cancelled()
        return "not reached"

    handle = tasks.run(stoppable, on_done=outcomes.append, on_failed=outcomes.append)
    assert started.wait(WAIT_S)
    handle.cancel()
    gui.run_until(lambda: len(outcomes) == 2)
    assert isinstance(outcomes[0], ZeroDivisionError) and isinstance(outcomes[1], TaskCancelled)


def test_an_abandoned_job_reports_nothing_even_if_its_result_was_already_posted(gui_and_tasks):
    gui, tasks = gui_and_tasks
    outcomes: list[object] = []
    handle = tasks.run(lambda _t: "result", on_done=outcomes.append)
    assert handle.wait(WAIT_S)  # finished, its result is waiting in the GUI queue
    handle.abandon()  # e.g. the panel closed before the GUI thread got to it
    gui.drain()
    assert outcomes == []


def test_coroutines_run_on_the_network_loop_in_lane_order_and_cancel_where_they_wait(gui_and_tasks):
    gui, tasks = gui_and_tasks
    log: list[str] = []
    loop_threads: set[str] = set()

    async def forever(_task) -> None:
        loop_threads.add(threading.current_thread().name)
        log.append("forever started")
        try:
            await asyncio.Event().wait()
        finally:
            log.append("forever cleaned up")

    async def after(_task) -> str:
        loop_threads.add(threading.current_thread().name)
        log.append("after")
        return "after done"

    outcomes: list[object] = []
    first = tasks.run_async(forever, lane="panel", on_failed=outcomes.append)
    second = tasks.run_async(after, lane="panel", on_done=outcomes.append)
    gui.run_until(lambda: "forever started" in log)
    assert "after" not in log  # the lane keeps it behind the first
    first.cancel()
    gui.run_until(lambda: len(outcomes) == 2)
    assert isinstance(outcomes[0], TaskCancelled) and outcomes[1] == "after done"
    assert log == ["forever started", "forever cleaned up", "after"]
    assert first.done and second.done and loop_threads == {"console-network"}


def test_nothing_runs_after_close(gui_and_tasks):
    gui, tasks = gui_and_tasks
    tasks.close()
    handle = tasks.run(lambda _t: "late", on_done=lambda r: pytest.fail("ran after close"))
    assert handle.done and handle.abandoned
