"""An HTTP client bound to one device's way of being reached: its base URL's scheme and its TLS context.

Code that only GETs from one device (the Compare pipeline) takes this instead of the shared aiohttp session, and
every request carries the pinned TLS context without that code having to know about trust at all.
"""

from __future__ import annotations

import ssl

import aiohttp

from edge_console.client.net.device_access import ssl_arg


class DeviceBoundSession:
    def __init__(self, session: aiohttp.ClientSession, tls: ssl.SSLContext | None) -> None:
        self._session = session
        self.tls = tls

    def get(self, url: str, **kwargs):
        return self._session.get(url, ssl=ssl_arg(self.tls), **kwargs)
