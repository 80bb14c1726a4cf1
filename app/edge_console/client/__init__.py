"""The console's Qt-free half: everything it does with devices, without a window.

The views and the Qt glue on top of it are the console package (../console/). The client never imports Qt or the
console, not even for a type (import-linter's contract in pyproject.toml, and tests/unit/test_package_layout.py):
where it needs part of a console object it says what as a Protocol of its own. So the headless commands
(`edge-console push|rollback|release|audit|compare|pairings`) run where PySide6 is absent.

    net/               device sessions, discovery, pairing, device clocks: asyncio on one loop thread
    releases/          the release library, delivery, push, rollouts, eligibility, the audit merge, headless commands
    compare/           the compare engine: a device's frame and the laptop's model on the same pixels
    storage/           the console database's schema (versioned migrations) and the one way to open it
    runtime.py         the owner of the console's threads and shared sessions: network loop, HTTP client, decoders
    tasks.py           background work with progress and cancellation: a thread pool, serial lanes, coroutines
    store.py           the devices table (every device ever seen), on the store's serial lane
    device_registry.py who each known device is (mDNS, added by address, remembered) and the merge rules
    trust_store.py     this console's TLS identity and the device certificates it pinned at pairing
    fleet_trust.py     the fleet's side of trust (a mixin of the console's Fleet): pins, reaching a device, moves
    telemetry_ring.py  the in-memory telemetry per device that the charts draw, bounded by design
    frame_ring.py      the bounded ring of received frames a paused preview steps through
    image_headers.py   an image's size read from its own header (core's, re-exported for the console's modules)
    untrusted_text.py  what a device says, made safe to show: plain text, control and bidi characters visible
"""
