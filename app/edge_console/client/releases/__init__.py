"""Releases on the console's side, Qt-free: the library of imported release files (verified as a device would),
the console's delivery signing, pushing to one device (tus upload, then the device's own progress), staged
rollouts persisted in the console's database, the merged audit trail, and the headless commands. The window's
release views (console/releases_ui/) and the headless commands drive the same code here.

    library.py         import, verify, list, check again after a trust, remove; the console's release trust
    delivery.py        the console's delivery key; fresh snapshot/timestamp for each push
    push.py            one device: upload (resumable), install, follow (the device, not an address); rollback
    rollout.py         a rollout and its devices' rows as records, persisted at every step
    rollout_states.py  a rollout's two state machines as transition tables, and the check every move goes through
    rollout_runner.py  rollout orchestration, once for the window and the headless command: canaries, batches,
                       halting, resuming, cancelling, undoing
    eligibility.py     whether a release can go to a device: the device's own rules, on what it reported
    facts.py           a device's facts for those rules, read from its state (hardware kind, role, canaries)
    device_reports.py  a device's /v1/models and /v1/release-trust; installing a release root on it
    audit_merge.py     the console's audit log and its devices', merged and verified; CSV and JSON
    db_lane.py         the rollout and audit-head tables and the audit log, on the console store's own lane
    cli.py             `edge-console release | release-key | pair | push | rollback | audit`
    cli_context.py     what every headless release command works with: data folder, library, pins, audit log
    library_cli.py     `edge-console release remove`, and the check again after `release trust`
    trust_cli.py       `edge-console release install-trust`
"""
