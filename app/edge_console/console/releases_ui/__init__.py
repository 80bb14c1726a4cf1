"""The release views (issue 13): the Releases tab and what it shows, on top of the Qt-free client/releases/
(library, push, rollouts, eligibility and a device's facts, the database lane, the audit merge).

    center.py         the views' shared state: the library, trust, imports, the console's audit log
    rollouts.py       rollouts as the window drives them (start, follow, cancel, resume, undo); one device's rollback
    versions.py       every device's GET /v1/models and /v1/release-trust, polled while someone watches
    library_view.py   Library: import, verify, facts, model card, golden set (golden_view.py)
    versions_view.py  Fleet versions: the matrix, greyed devices with the reason, per-device rollback,
                      Install release trust…
    push_dialog.py    Push…: devices, canaries, batches, when to halt
    rollout_view.py   Rollouts: per-device progress, cancel, resume, undo
    audit_view.py     Audit: the merged, verified logs (audit_source.py), filters, export
    confirm.py        the question asked before cancelling, undoing, rolling back, installing trust, quitting
    workspace.py      the tab holding the four pages; window_glue.py: how the main window carries it
    demo_tour.py      the demo's first minute with releases, played and pictured (README screenshots)
"""
