"""The operator console (`edge-console`): the only package that imports PySide6 or pyqtgraph.

Where things are:
    cli.py             entry point: --demo, --screenshot, --size, --db, --browse-interface, --add; `compare` (headless)
    screenshot.py      --screenshot and --open-compare: the running program renders itself (the README's pictures)
    demo.py            the simulated fleet (`edge-agent simulate` on 127.0.0.1) that lives as long as the console,
                       and what only the demo needs: listing only its devices, adding them by address as a fallback
    device_registry.py Qt-free: who each known device is (mDNS, added by address, remembered) and the merge rules
    fleet.py           the registry's thin Qt face: a DeviceState per device, signals, a network session each
    runtime.py         Qt-free owner of threads and shared sessions: network loop, HTTP client, decoders, tasks, store
    tasks.py           Qt-free: background work with progress and cancellation (thread pool, serial lanes, and
                       coroutines on the network loop), results back on the GUI thread
    device_state.py    one device as a plain QObject with signals: status, info, telemetry, latest frame, errors
    session_bridge.py  hands a network session's results to its DeviceState on the GUI thread
    gui_dispatch.py    the one way background work returns to the GUI thread
    discovery.py       mDNS browsing as Qt signals
    frames.py          stream message -> paintable QImage, off the GUI thread; LatestFrameSlot
    frame_ring.py      Qt-free: the bounded ring of received frames a paused preview steps through (← →)
    image_headers.py   Qt-free: an image's size read from its own header, so a decompression bomb is refused undecoded
    untrusted_text.py  Qt-free: what a device says, shown as plain text with control and bidi characters visible
    telemetry_ring.py  the in-memory ring of telemetry per device that the charts draw
    store.py           the console's SQLite database (devices seen), on its own serial lane; reads around damage
    colors.py          class (a fixed palette by class id), status and curve colours
    qt_compat.py       guards against known Qt binding defects
    main_window.py     docks, menus, shortcuts, notices, status bar, the current device; wiring only
    window_layout.py   dock minimums, a first layout that fits the screen, a saved layout restored only if it fits
    net/               asyncio + aiohttp + zeroconf on one loop thread, no Qt: device sessions, device clocks,
                       mDNS, backoff, addresses
    widgets/           views: device table, details, preview canvas (its words in preview_text) and controls, grid,
                       charts, add-device dialog, notice bar, shortcut list, label placement
    compare/           device vs a model on this laptop, same pixels (issue 5): the headless `edge-console
                       compare` and its Qt-free pipeline (fetch, session, saved_frames, worker, hard_frames), and
                       the Compare panel (panel, panel_layout, frame_view, overlay_painter, stats_view,
                       agreement_chart, export_dialog); its own __init__ says which file does what
"""
