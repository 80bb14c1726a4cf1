"""The client's network layer: asyncio + aiohttp + zeroconf on one background loop thread.

Nothing here imports Qt: sessions report through plain listener callbacks that run on the loop thread, and the
console's Qt side (its fleet and discovery modules) hands them to the GUI thread. That keeps the protocol code
testable without a display (tests/client) and the GUI thread free of sockets.

    loop_thread.py     the one loop thread (owned by `client.runtime.ConsoleRuntime`)
    device_session.py  everything the console does with one device: owns both channels; the control channel
                       (info, clock, health, telemetry and its history) is here
    stream_channel.py  the session's stream channel: `WS /v1/stream` while a view shows the device, frames decoded
                       off the loop
    device_link.py     what both channels share: where the device is reached, reading its answers, failures worded
    session_terms.py   what a session reports (the listener protocol, trust states) and how it words failures
    device_access.py   how to reach a device safely: scheme, TLS context, and whether it is the device we paired with
    bound_session.py   an HTTP client bound to one device's scheme and TLS context (the compare engine's)
    pairing_client.py  the console's side of pairing (SPAKE2 over a connection pinned to the device's certificate)
    device_clock.py    a device's clock offset and device timestamps on the console's clock
    mdns_browser.py    browsing `_edgeinfer._tcp`, announcements made safe to show
    addresses.py       host:port as users type it
    backoff.py         reconnect delays (the product's BackoffPolicy) with a sleep that can be cut short
    device_info.py     checks on what a device says about itself
    device_answers.py  the one way every device answer is read: bounded size and nesting, the expected JSON type
"""
