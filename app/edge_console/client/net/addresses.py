"""Device addresses as the user types them (the console's Add dialog, `--add`, `edge-console compare --device`)
and as mDNS reports them: one parser, built on `urllib.parse`, with messages in the user's words."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_AGENT_PORT = 8470  # the agent's API port unless configured otherwise; every example uses it
EXAMPLE = f"192.168.10.21:{DEFAULT_AGENT_PORT}"


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self}"


def unusable_address_reason(host: str) -> str | None:
    """Why `host` cannot be a device's address (it is not one machine: unspecified, broadcast, multicast,
    reserved), or None. Host names pass: only resolving them tells."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # a scoped IPv6 address keeps its zone apart
    except ValueError:
        return None
    if ip.is_unspecified:
        return f"{host} means 'any address', not a device"
    if ip.is_multicast:
        return f"{host} is a multicast group, not a device"
    if ip.version == 4 and (ip == ipaddress.IPv4Address("255.255.255.255") or ip.is_reserved):
        return f"{host} is a broadcast or reserved address, not a device"
    return None


def _looks_like_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def parse_host_port(text: str) -> DeviceAddress:
    """Parse `host:port`, `[v6]:port` or `http://host:port/...`; ValueError says what is wrong, in the user's words.

    A path after the address (a pasted `http://host:8470/v1/info`) is ignored: the address is what counts."""
    text = text.strip()
    if not text:
        raise ValueError(f"enter the device's address as host:port, for example {EXAMPLE}")
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    if scheme.lower() not in ("http", "https"):
        raise ValueError(f"{text!r}: give the device as host:port, for example {EXAMPLE} (not a {scheme}:// URL)")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if any(c.isspace() for c in netloc):
        raise ValueError(f"{netloc.rpartition(':')[0] or netloc!r} is not a host name")
    if "@" in netloc:
        raise ValueError(f"{text!r}: a device address has no user name; use host:port, for example {EXAMPLE}")
    if not netloc.startswith("[") and netloc.count(":") > 1:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, like [fe80::1]:{DEFAULT_AGENT_PORT}")
    try:
        parts = urlsplit("//" + netloc)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a bad port, or brackets around something that is not IPv6
        if netloc.startswith("[") and "]" in netloc:
            inside = netloc[1:netloc.index("]")]
            if not _is_ipv6(inside):
                raise ValueError(f"{inside!r} is not an IPv6 address") from exc
        port_text = netloc.rpartition(":")[2]
        raise ValueError(f"{port_text!r} is not a port number (1-65535)") from exc
    if netloc.startswith("[") and (port is None or not netloc.partition("]")[2].startswith(":")):
        raise ValueError(f"{text!r}: an IPv6 address needs brackets and a port, like [fe80::1]:{DEFAULT_AGENT_PORT}")
    if not host:
        raise ValueError(f"{text!r} has no host; use host:port, for example {EXAMPLE}")
    if port is None:
        raise ValueError(f"{text!r} has no port; use host:port, for example {netloc or 'device'}:{DEFAULT_AGENT_PORT}")
    if not 0 < port < 65536:
        raise ValueError(f"'{port}' is not a port number (1-65535)")
    if netloc.startswith("["):
        host = netloc[1:netloc.index("]")]  # urllib lowercases; an IPv6 literal keeps its own spelling
    if _looks_like_ipv4(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv4 address: each of its four numbers is 0-255, "
                             f"for example {EXAMPLE}") from None
    if reason := unusable_address_reason(host):
        raise ValueError(f"{reason}; give the device's own address, for example {EXAMPLE}")
    return DeviceAddress(host, port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
