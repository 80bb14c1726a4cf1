"""systemd's service notifications (sd_notify(3)), without libsystemd: readiness, watchdog pings, status text.

Under a unit with `Type=notify` systemd passes NOTIFY_SOCKET (a unix datagram socket, `@name` for the abstract
namespace) and, with `WatchdogSec=`, WATCHDOG_USEC (and WATCHDOG_PID). Everywhere else (a terminal, the tests,
the simulator's agents) NOTIFY_SOCKET is unset and every call here does nothing, cheaply.

The agent says `ready()` once it listens (and is announced), calls `watchdog()` from its once-a-second telemetry
loop, so a hung event loop stops the pings and systemd restarts the process, and `stopping()` when it shuts down.
A failure to notify never stops the agent: it is logged once.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)
_warned = False


def _address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not (address.startswith("/") or address.startswith("@")):
        return None  # unset, or a vsock address this agent has no use for
    return "\0" + address[1:] if address.startswith("@") else address


def notify(*assignments: str) -> bool:
    """Send `KEY=value` lines to systemd; False when not under systemd or when the message could not be sent."""
    global _warned
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(assignments).encode())
        return True
    except OSError as exc:
        if not _warned:
            _warned = True
            log.warning("cannot notify systemd through %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False


def ready(status: str = "") -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def watchdog() -> bool:
    """A keep-alive ping; only sent when systemd asked for one (WatchdogSec=) for this very process."""
    if watchdog_interval_s() is None:
        return False
    return notify("WATCHDOG=1")


def stopping() -> bool:
    return notify("STOPPING=1")


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def watchdog_interval_s() -> float | None:
    """The watchdog period systemd expects pings within, or None when it expects none (from sd_watchdog_enabled)."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1e6
