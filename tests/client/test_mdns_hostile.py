"""The mDNS browser fed hostile announcements: registered with zeroconf on 127.0.0.1 only, browsed on 127.0.0.1
only. Invalid UTF-8, control characters, strings as long as DNS-SD allows, no id, odd instance names, duplicate
and empty keys: the browser never crashes, and each becomes a DiscoveredService the console can list safely."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.mdns_browser import (
    MAX_NAME_CHARS,
    MAX_TXT_VALUE_CHARS,
    DiscoveredService,
    MdnsBrowser,
    service_from_announcement,
)
from edge_console.core.protocol import SERVICE_TYPE

LOOPBACK = "127.0.0.1"
WAIT_S = 30.0  # a guard against hanging, not a timing assertion


def txt(*entries: bytes) -> bytes:
    """Raw TXT record data: each entry as one length-prefixed string (DNS-SD allows up to 255 bytes each)."""
    return b"".join(bytes((len(e),)) + e for e in entries)


def is_safe_line(text: str, limit: int) -> bool:
    return len(text) <= limit and text.isprintable()


def test_hostile_announcements_become_sensible_services():
    tag = uuid.uuid4().hex[:8]  # other people's agents may announce on this loopback too: ours carry this tag
    port = 8470
    huge = [b"k%02d=" % i + b"A" * 251 for i in range(30)]  # thirty maximal strings, ~7.7 kB of TXT
    announcements = {
        f"bad-utf8-{tag}": txt(b"id=\xc3\x28" + tag.encode(), b"name=\xff\xfeCam\x00\x1b[31mred\n2", b"model=\x80"),
        f"huge-{tag}": txt(b"id=huge" + tag.encode(), b"name=" + b"N" * 250, *huge),
        f"no-id-{tag}": txt(b"name=Kamera S\xc3\xbcd", b"model=parts-v2"),
        f"Kamera S\u00fcd \u2603 (2) [{tag}]": txt(b"ID=upper" + tag.encode(), b"id=lower", b"=empty-key", b"flag"),
        f"cam.with.dots-{tag}": txt(b"id=dots" + tag.encode(), b"name="),
    }
    found: dict[str, DiscoveredService] = {}
    errors: list[str] = []

    async def scenario() -> None:
        publisher = AsyncZeroconf(interfaces=[LOOPBACK])
        infos = [ServiceInfo(SERVICE_TYPE, f"{instance}.{SERVICE_TYPE}", addresses=[socket.inet_aton(LOOPBACK)],
                             port=port, properties=raw, server=f"hostile-{tag}.local.")
                 for instance, raw in announcements.items()]
        browser = MdnsBrowser([LOOPBACK], on_found=lambda s: found.setdefault(s.service_name, s),
                              on_removed=lambda _name: None, on_error=errors.append)
        try:
            for info in infos:
                await publisher.async_register_service(info)
            await browser.start()

            async def all_found() -> None:
                while sum(tag in name for name in found) < len(announcements):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(all_found(), WAIT_S)
        finally:
            await browser.close()
            for info in infos:
                await publisher.async_unregister_service(info)
            await publisher.async_close()

    asyncio.run(scenario())
    assert not errors
    ours = {name.removesuffix("." + SERVICE_TYPE): service for name, service in found.items() if tag in name}
    for service in ours.values():
        assert service.best_address == DeviceAddress(LOOPBACK, port)
        assert is_safe_line(service.name, MAX_NAME_CHARS) and service.name
        assert all(key == key.lower() and is_safe_line(key, 64) for key in service.txt)
        assert all(is_safe_line(value, MAX_TXT_VALUE_CHARS) for value in service.txt.values())

    bad = ours[f"bad-utf8-{tag}"]
    assert bad.device_id == bad.service_name  # an id that is not valid text is no id: the service name stands in
    assert bad.name.startswith("\ufffd\ufffdCam") and "\x1b" not in bad.name and "\n" not in bad.name
    huge_one = ours[f"huge-{tag}"]
    assert huge_one.device_id == f"huge{tag}" and len(huge_one.txt) == 32
    assert huge_one.txt["name"] == "N" * 250 and huge_one.name == "N" * MAX_NAME_CHARS  # shown: a table row's worth
    assert ours[f"no-id-{tag}"].device_id.startswith(f"no-id-{tag}.") and ours[f"no-id-{tag}"].name == "Kamera Süd"
    weird = ours[f"Kamera Süd ☃ (2) [{tag}]"]
    assert weird.device_id == f"upper{tag}"  # keys are case-insensitive: the first "id" wins
    assert weird.name == f"Kamera Süd ☃ (2) [{tag}]" and weird.txt["flag"] == "" and "" not in weird.txt
    dots = ours[f"cam.with.dots-{tag}"]
    assert dots.device_id == f"dots{tag}" and dots.name == f"cam.with.dots-{tag}"  # empty name: the instance's


def test_random_bytes_never_break_the_announcement_parser():
    rng = random.Random(20261128)  # fixed seed: the same hostile inputs on every run
    for _ in range(2000):
        properties = {bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70))):
                      (None if rng.random() < 0.1 else bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))))
                      for _ in range(rng.randrange(0, 8))}
        name = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(0, 80))) + "." + SERVICE_TYPE
        service = service_from_announcement(name, rng.choice([0, 1, 8470, 65535, 70000]), [LOOPBACK, "fe80::1%1"],
                                            properties)
        assert service.name and is_safe_line(service.name, MAX_NAME_CHARS)
        assert service.device_id
        assert all(is_safe_line(v, MAX_TXT_VALUE_CHARS) for v in service.txt.values())
        assert (service.best_address is None) == (service.addresses == [])
        if service.best_address is not None:
            assert service.best_address.host == LOOPBACK  # IPv4 first; a scoped IPv6 address never breaks it
