"""Device addresses as the user types them and as mDNS reports them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self}"


def parse_host_port(text: str) -> DeviceAddress:
    """Parse `host:port`, `[v6]:port` or `http://host:port/`; ValueError says what is wrong, in the user's words."""
    text = text.strip()
    for prefix in ("http://", "https://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    text = text.rstrip("/")
    if not text:
        raise ValueError("enter the device's address as host:port, for example 192.168.1.20:8080")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r}: an IPv6 address needs brackets and a port, like [fe80::1]:8080")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{host!r} is not an IPv6 address") from exc
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r} has no port; use host:port, for example {text or 'device'}:8080")
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 address in brackets, like [fe80::1]:8080")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{port_text!r} is not a port number (1-65535)")
    if any(c.isspace() for c in host):
        raise ValueError(f"{host!r} is not a host name")
    return DeviceAddress(host, int(port_text))
