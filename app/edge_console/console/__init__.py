"""The operator console (`edge-console`): the only package that imports PySide6 or pyqtgraph.

Views, view-state and Qt glue only: what the console does with devices without a window (sessions, the registry,
the database, tasks, the compare engine, releases and rollouts) is the client package (../client/), which never
imports this one.

Where things are:
    cli.py             entry point: --demo, --screenshot, --size, --db, --browse-interface, --add; the headless
                       commands handed to client/
    __main__.py        `python -m edge_console.console`, the same entry point
    platform_check.py  what is missing before Qt aborts (a display, the X11 libraries), said in words
    screenshot.py      --screenshot and --open-compare: the running program renders itself (the README's pictures)
    demo.py            the simulated fleet (`edge-agent simulate` on 127.0.0.1) that lives as long as the console,
                       and what only the demo needs: listing only its devices, adding them by address as a fallback
    fleet.py           the device registry's thin Qt face: a DeviceState per device, signals, a network session each
    device_state.py    one device as a plain QObject with signals: status, info, telemetry, latest frame, errors
    session_bridge.py  hands a network session's results to its DeviceState on the GUI thread
    gui_dispatch.py    the one way background work returns to the GUI thread
    discovery.py       mDNS browsing as Qt signals
    frames.py          stream message -> paintable QImage, off the GUI thread; LatestFrameSlot
    colors.py          class (a fixed palette by class id), status and curve colours
    qt_compat.py       guards against known Qt binding defects
    main_window.py     docks, menus, shortcuts, notices, status bar, the current device; wiring only
    window_layout.py   dock minimums, a first layout that fits the screen, a saved layout restored only if it fits
    widgets/           views: device table, details, preview canvas (its words in preview_text) and controls, grid,
                       charts, add-device dialog, pairing, notice bar, shortcut list, label placement
    compare/           the Compare panel: device vs a model on this laptop, same pixels (the engine is client/compare/)
    releases_ui/       the Releases tab: library, fleet versions, push, rollouts, audit (the logic is client/releases/)
"""
