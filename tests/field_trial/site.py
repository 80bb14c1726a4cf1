"""The simulated site, assembled: the network (netns.Site), the release authority, the console and the devices.

    site = FieldSite.open(devices=10)   # namespaces, bridge, agents running, trust installed, console paired
    ...
    site.close()                        # every process, namespace, mount and file of the run is gone

Pairing is done both ways a site does it: two devices pair over the network with the one-time code their own
terminal prints (`edge-agent pair` then `edge-console pair HOST:PORT --code C`, SPAKE2 across the bridge); the
others are enrolled locally (`edge-agent enrol --certificate console.crt`, and the console pins the device's
certificate).
"""

from __future__ import annotations

import contextlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .console_side import Console
from .devices import Device, agent_cli
from .netns import Site
from .releases import ReleaseKit

CODE = re.compile(r"(\d{4})-(\d{4})")


@dataclass
class FieldSite:
    net: Site
    kit: ReleaseKit
    console: Console
    devices: list[Device]
    figures: dict = field(default_factory=dict)
    roles: dict[str, list[int]] = field(default_factory=dict)  # skewed, small_disk, general (device indexes)

    @classmethod
    def open(cls, devices: int = 10, fps: float = 2.0, probation_s: float = 3.0, paired_by_code: int = 2,
             extras: int = 1, skewed: dict[int, str] | None = None, small_disk: dict[int, int] | None = None,
             before_start=None) -> FieldSite:
        """`skewed`: device index -> faketime offset ("+6h"); `small_disk`: device index -> tmpfs size in MB for
        its state folder; `before_start(site)`: runs once the devices are prepared, before any agent starts."""
        t0 = time.monotonic()
        skewed, small_disk = skewed or {}, small_disk or {}
        net = Site(devices, extras=extras)
        site = None
        try:
            kit = ReleaseKit.create(net.dir / "kit")
            console = Console(net)
            console.cli("release", "trust", str(kit.root_json), check=True)  # also makes the console's identity
            for index, size_mb in small_disk.items():
                net.small_filesystem(net.dir / "devices" / f"d{index:02d}" / "state", size_mb)
            made = [Device(net, i, fps=fps, probation_s=probation_s, root_json=kit.root_json,
                           console_cert=console.cert_path) for i in range(devices)]
            for index, offset in skewed.items():
                made[index].faketime = offset
            site = cls(net, kit, console, made)
            site.roles = {"skewed": sorted(skewed), "small_disk": sorted(small_disk),
                          "general": [i for i in range(devices) if i not in skewed and i not in small_disk]}
            if before_start is not None:
                before_start(site)
            for device in made[paired_by_code:]:
                device.enrol_console()
            with ThreadPoolExecutor(max_workers=devices) as pool:
                starts = list(pool.map(lambda d: d.start(), made))
            for device in made[paired_by_code:]:
                console.pin(device)
            for device in made[:paired_by_code]:
                site.pair_by_code(device)
            site.figures = {"devices": devices, "site_up_s": round(time.monotonic() - t0, 1),
                            "agent_start_s_max": round(max(starts), 1)}
            return site
        except BaseException:
            if site is not None:
                site.close()
            else:
                net.close()
            raise

    def pair_by_code(self, device: Device, role: str = "operator") -> None:
        """The code printed on the device's terminal, typed into the console: the exchange crosses the bridge."""
        printed = agent_cli("pair", "--role", role, "--state-dir", str(device.state))
        code = "".join(CODE.search(printed).groups())
        result = self.console.cli("pair", device.host_port, "--code", code, "--name", "field-trial console")
        if result.returncode != 0:
            raise RuntimeError(f"pairing with {device.host_port} failed: {result.stderr[-1500:]}")

    def close(self) -> None:
        for device in self.devices:
            with contextlib.suppress(Exception):
                device.kill()
        with contextlib.suppress(Exception):
            self.console.close()
        self.net.close()
