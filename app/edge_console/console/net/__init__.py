"""The console's network layer: asyncio + aiohttp + zeroconf on one background loop thread.

Nothing here imports Qt: sessions report through plain listener callbacks that run on the loop thread, and the
Qt side (`edge_console.console.fleet`, `edge_console.console.discovery`) hands them to the GUI thread. That keeps the protocol code
testable without a display and the GUI thread free of sockets.
"""
