"""The console's Qt-free half: everything it does with devices, without a window.

Device sessions and discovery (net/), pairing and pinned certificates (trust_store, fleet_trust), the device
registry and the database (device_registry, store), the compare engine (compare/), releases (releases/: library,
delivery, push, rollouts, audit merge) and the thread that runs work (runtime, tasks). `edge_console.console`
holds the views and the Qt glue on top of it. Never imports Qt (an import-linter contract in pyproject.toml), so
the headless commands (`edge-console push|rollback|release|audit|compare|pairings`) run where PySide6 is absent.
"""
