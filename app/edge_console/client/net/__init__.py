"""The console's network layer: asyncio + aiohttp + zeroconf on one background loop thread.

Nothing here imports Qt: sessions report through plain listener callbacks that run on the loop thread, and the
Qt side (`edge_console.console.fleet`, `edge_console.console.discovery`) hands them to the GUI thread. That keeps
the protocol code testable without a display (tests/console_headless) and the GUI thread free of sockets.

    loop_thread.py     the one loop thread (owned by `console.runtime.ConsoleRuntime`)
    device_session.py  everything the console does with one device: info, clock, health, telemetry, stream
    device_clock.py    a device's clock offset and device timestamps on the console's clock
    mdns_browser.py    browsing `_edgeinfer._tcp`, announcements made safe to show
    addresses.py       host:port as users type it
    backoff.py         reconnect delays (the product's BackoffPolicy) with a sleep that can be cut short
    device_info.py     checks on what a device says about itself
    device_answers.py  the one way every device answer is read: bounded size and nesting, the expected JSON type
"""
