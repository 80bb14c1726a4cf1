"""systemd notifications from the agent (`Type=notify`, `WatchdogSec=` in installers/agent/edge-agent.service):
the messages on a real unix datagram socket, as systemd receives them, and a real agent telling systemd it is
ready and alive."""

from __future__ import annotations

import os
import socket
import time

import pytest

from edge_console.agent import sd_notify
from tests.support.agent_harness import Agent


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_ready_status_stopping_reach_systemd(notify_socket):
    assert sd_notify.ready("listening on 127.0.0.1:8470")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=listening on 127.0.0.1:8470"
    assert sd_notify.status("degraded: camera lost") and notify_socket.recv(4096) == b"STATUS=degraded: camera lost"
    assert sd_notify.stopping() and notify_socket.recv(4096) == b"STOPPING=1"


def test_watchdog_pings_only_when_systemd_asked_this_process(notify_socket, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert not sd_notify.watchdog() and sd_notify.watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process (a parent's)
    assert not sd_notify.watchdog()
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sd_notify.watchdog_interval_s() == 30.0
    assert sd_notify.watchdog() and notify_socket.recv(4096) == b"WATCHDOG=1"
    monkeypatch.setenv("WATCHDOG_USEC", "nonsense")
    assert not sd_notify.watchdog()


def test_abstract_socket_names_work(monkeypatch):
    name = f"edge-agent-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert sd_notify.ready() and sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_nothing_happens_and_a_dead_socket_never_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sd_notify.ready() and not sd_notify.stopping()
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert not sd_notify.ready()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert not sd_notify.ready() and not sd_notify.ready()  # logged once, never raised


def test_a_running_agent_says_ready_and_pings_the_watchdog(tmp_path):
    """The hooks in the agent: READY=1 once it listens (serve.py), WATCHDOG=1 from its telemetry loop."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)  # the agent already listens when start() returns: READY=1 is due at once
    # WATCHDOG_PID is left out: systemd sets it to the service's main pid, which a test cannot know beforehand
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="5000000")
    env.pop("WATCHDOG_PID", None)
    agent = Agent(tmp_path / "state", source="synthetic", secure=False, env=env).start()
    try:
        messages = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(m.startswith(b"WATCHDOG=1") for m in messages):
            try:
                messages.append(sock.recv(4096))
            except TimeoutError:
                break
    finally:
        agent.stop()
        sock.close()
    assert any(m.startswith(b"READY=1") for m in messages), f"no READY=1 from the agent: {messages}"
    assert any(m == b"WATCHDOG=1" for m in messages), f"no watchdog ping from the agent: {messages}"
