"""The simulated site's network: one namespace per device, one for the console, one holding the switch (a bridge).

    <run>-br     the "switch": bridge br0 with one port per host (p00, p01, ..., pcon), no address at all
    <run>-con    the console's network stack: eth0 192.0.2.2/24
    <run>-dNN    device NN: eth0 192.0.2.(10+NN)/24
    <run>-xNN    extra hosts (a device that answers but is not an agent, ...): eth0 192.0.2.(200+NN)/24

Safety, by construction: every link is a veth pair created *inside* our namespaces (never in the host's), the only
route in each namespace is the connected 192.0.2.0/24 (a documentation range), there is no default route, IPv6
is off in our namespaces, and nothing is ever added to, or changed on, a host interface, route or firewall.
Packet filters (nftables) are loaded inside our namespaces only, with `ip netns exec`.

Clean-up, always: `Site.close()` kills every process in our namespaces, deletes the namespaces (which removes
their veths, the bridge and their nft rules), unmounts our small filesystems and removes the run folder. It runs
from `finally`, from atexit and from SIGTERM/SIGINT handlers; a detached reaper process (reaper.py) runs it when
the owning process dies without a chance to (kill -9); and every new run first removes what earlier runs whose
owner is gone left behind (names carry the owner's pid: eft<pid>s<n>-...).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "eft"
NAME = re.compile(rf"^{PREFIX}(\d+)s(\d+)-")
BASE = Path(tempfile.gettempdir()) / "edge-field-trial"
SUBNET = "192.0.2"
CONSOLE_ADDR = f"{SUBNET}.2"
CLONE_NEWNET = 0x40000000
_sites = 0
_lock = threading.Lock()


class SiteUnavailable(RuntimeError):
    """This machine cannot host the simulated site (not root, no iproute2, no namespaces)."""


def run(*args: str, check: bool = True, timeout: float = 30.0, input: str | None = None) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return proc.stdout


def in_ns(ns: str, *args: str, check: bool = True, input: str | None = None) -> str:
    return run("ip", "netns", "exec", ns, *args, check=check, input=input)


def unavailable_reason() -> str | None:
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "the simulated site needs root (ip netns)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    return None


def have_nft() -> bool:
    return shutil.which("nft") is not None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _our_namespaces() -> list[str]:
    out = run("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip() and NAME.match(line.split()[0])]


def _kill_ns_processes(ns: str) -> None:
    for _ in range(3):
        pids = [int(p) for p in run("ip", "netns", "pids", ns, check=False).split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _our_mounts(run_dir: Path | None = None) -> list[str]:
    root = str(run_dir or BASE)
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target == root or target.startswith(root + "/"):
                found.append(target)
    return sorted(found, key=len, reverse=True)  # innermost first


def clean_run(tag: str) -> None:
    """Remove everything of run `tag` (eft<pid>s<n>): processes, namespaces, mounts, its folder."""
    for ns in _our_namespaces():
        if ns.startswith(tag + "-"):
            _kill_ns_processes(ns)
            run("ip", "netns", "del", ns, check=False)
    run_dir = BASE / tag
    for target in _our_mounts(run_dir):
        run("umount", "-l", target, check=False)
    shutil.rmtree(run_dir, ignore_errors=True)


def clean_leftovers() -> list[str]:
    """What earlier runs left behind when their owner died without cleaning up (kill -9 of pytest, a reboot)."""
    tags = {NAME.match(ns).group(0)[:-1] for ns in _our_namespaces()}
    if BASE.exists():
        tags |= {p.name for p in BASE.iterdir() if NAME.match(p.name + "-")}
    for target in _our_mounts():
        rel = Path(target).relative_to(BASE).parts
        if rel and NAME.match(rel[0] + "-"):
            tags.add(rel[0])
    gone = []
    for tag in sorted(tags):
        owner = int(NAME.match(tag + "-").group(1))
        if owner != os.getpid() and not _pid_alive(owner):
            clean_run(tag)
            gone.append(tag)
    return gone


def setns(ns: str) -> None:
    """Move the calling *thread* into network namespace `ns` (network namespaces are per thread on Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Site:
    """The namespaces, the bridge and the links of one simulated site. `close()` removes all of it."""

    def __init__(self, devices: int, extras: int = 1) -> None:
        global _sites
        if reason := unavailable_reason():
            raise SiteUnavailable(reason)
        self.left_behind_by_others = clean_leftovers()
        with _lock:
            _sites += 1
            self.tag = f"{PREFIX}{os.getpid()}s{_sites}"
        self.dir = BASE / self.tag
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bridge_ns = f"{self.tag}-br"
        self.console_ns = f"{self.tag}-con"
        self.device_ns = [f"{self.tag}-d{i:02d}" for i in range(devices)]
        self.extra_ns = [f"{self.tag}-x{i:02d}" for i in range(extras)]
        self.device_addr = [f"{SUBNET}.{10 + i}" for i in range(devices)]
        self.extra_addr = [f"{SUBNET}.{200 + i}" for i in range(extras)]
        self.console_addr = CONSOLE_ADDR
        self.ports: dict[str, str] = {}  # namespace -> its port on the bridge
        self.mounts: list[Path] = []
        self._closed = False
        self._reaper: subprocess.Popen | None = None
        atexit.register(self.close)
        self._install_signal_handlers()
        try:
            self._start_reaper()
            self._build()
        except BaseException:
            self.close()
            raise

    # -- building ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        br = self.bridge_ns
        for ns in (br, self.console_ns, *self.device_ns, *self.extra_ns):
            run("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
            in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", check=False)
            in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1", check=False)
        in_ns(br, "ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        in_ns(br, "ip", "link", "set", "br0", "up")
        hosts = [(self.console_ns, self.console_addr, "pcon")]
        hosts += [(ns, addr, f"p{i:02d}") for i, (ns, addr) in enumerate(zip(self.device_ns, self.device_addr))]
        hosts += [(ns, addr, f"x{i:02d}") for i, (ns, addr) in enumerate(zip(self.extra_ns, self.extra_addr))]
        for ns, addr, port in hosts:
            # Created inside the bridge's namespace with its peer moved straight into the host's namespace: the
            # pair never exists in the machine's own namespace.
            in_ns(br, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            in_ns(br, "ip", "link", "set", port, "master", "br0")
            in_ns(br, "ip", "link", "set", port, "up")
            in_ns(ns, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            in_ns(ns, "ip", "link", "set", "eth0", "up")
            self.ports[ns] = port
        for ns, _, _ in hosts:
            routes = in_ns(ns, "ip", "-4", "route", "show")
            assert "default" not in routes, f"{ns} has a default route: {routes}"

    # -- faults on the wire ---------------------------------------------------------------------------------------
    def set_link(self, ns: str, up: bool) -> None:
        """The host's cable at the switch: its bridge port down (the host sees no carrier) or up."""
        in_ns(self.bridge_ns, "ip", "link", "set", self.ports[ns], "up" if up else "down")

    def nft(self, ns: str, ruleset: str) -> None:
        """Load an nftables ruleset inside namespace `ns` (never the host's)."""
        in_ns(ns, "nft", "-f", "-", input=ruleset)

    def nft_flush(self, ns: str) -> None:
        in_ns(ns, "nft", "flush", "ruleset", check=False)

    def block_multicast(self, on: bool) -> None:
        """Drop mDNS (UDP 5353, 224.0.0.251) at the switch, between every port: as a plant network's switch that
        filters multicast would. Unicast traffic is untouched."""
        if not on:
            self.nft_flush(self.bridge_ns)
            return
        self.nft(self.bridge_ns, "table bridge fieldtrial {\n"
                 " chain forward { type filter hook forward priority 0; policy accept;\n"
                 "  ip daddr 224.0.0.0/4 drop\n  udp dport 5353 drop\n }\n}\n")

    def reset_tcp(self, ns: str, port: int, on: bool) -> None:
        """Inside device namespace `ns`: answer every TCP segment to `port` with a reset (a middlebox that kills the
        connections), or stop doing so."""
        if not on:
            in_ns(ns, "nft", "delete", "table", "inet", "ftreset", check=False)
            return
        self.nft(ns, "table inet ftreset {\n chain input { type filter hook input priority 0; policy accept;\n"
                     f"  tcp dport {port} reject with tcp reset\n }}\n}}\n")

    def rate_limit(self, ns: str, port: int, kbytes_per_s: int | None) -> None:
        """Inside device namespace `ns`: drop TCP segments to `port` above a rate (a slow, lossy link)."""
        in_ns(ns, "nft", "delete", "table", "inet", "ftrate", check=False)
        if kbytes_per_s:
            self.nft(ns, "table inet ftrate {\n chain input { type filter hook input priority 0; policy accept;\n"
                         f"  tcp dport {port} limit rate over {kbytes_per_s} kbytes/second burst 256 kbytes drop\n"
                         " }\n}\n")

    # -- small filesystems ------------------------------------------------------------------------------------------
    def small_filesystem(self, folder: Path, size_mb: int) -> Path:
        """A tmpfs of `size_mb` at `folder` (inside the run folder): a device whose disk can fill up."""
        folder = Path(folder)
        assert self.dir in folder.parents, folder
        folder.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", f"{self.tag}-tmpfs", str(folder))
        self.mounts.append(folder)
        return folder

    # -- commands in namespaces -------------------------------------------------------------------------------------
    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def namespaces(self) -> list[str]:
        return [ns for ns in _our_namespaces() if ns.startswith(self.tag + "-")]

    # -- clean-up ---------------------------------------------------------------------------------------------------
    def _start_reaper(self) -> None:
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "tests.field_trial.reaper", str(os.getpid()), self.tag],
            cwd=Path(__file__).resolve().parents[2], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(sig)

            def handler(signum, frame, _previous=previous):
                self.close()
                if callable(_previous):
                    _previous(signum, frame)
                else:
                    raise SystemExit(128 + signum)

            signal.signal(sig, handler)
        # SIGINT stays Python's KeyboardInterrupt: it unwinds through the callers' `finally` into close().

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        clean_run(self.tag)
        if self._reaper is not None and self._reaper.poll() is None:
            self._reaper.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._reaper.wait(5)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    @property
    def closed(self) -> bool:
        return self._closed


def host_network_snapshot() -> dict:
    """The host's own interfaces, addresses and routes: a run must leave them exactly as they were."""
    def addr(line: str) -> str:
        parts = line.split()
        return " ".join(parts[1:4])  # interface, family, address (lifetimes change by themselves)
    return {"links": sorted(line.split(":")[1].strip().split("@")[0]
                            for line in run("ip", "-o", "link", "show").splitlines()),
            "addresses": sorted(addr(line) for line in run("ip", "-o", "addr", "show").splitlines()),
            "routes": sorted(run("ip", "route", "show", "table", "all").splitlines()),
            "netns": sorted(line.split()[0] for line in run("ip", "netns", "list", check=False).splitlines()
                            if line.strip() and not NAME.match(line.split()[0]))}
