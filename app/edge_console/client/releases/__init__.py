"""Releases on the console's side (issue 13), Qt-free: the library of imported release files (verified as a device
would), the console's delivery signing, pushing to one device (tus upload, then the device's own progress),
staged rollouts persisted in the console's database, the merged audit trail, and the headless commands.

    library.py      import, verify, list, check again after a trust, remove; the console's release trust
    library_cli.py  `edge-console release remove`, and the check again after `release trust`
    delivery.py     the console's delivery key; fresh snapshot/timestamp for each push
    push.py         one device: upload (resumable), install, follow (the device, not an address); rollback
    rollout.py      canaries, batches, halting, resuming, cancelling, undoing; where each device is now
    eligibility.py  whether a release can go to a device: the device's own rules, on what it reported
    device_reports.py  a device's /v1/models and /v1/release-trust; installing a release root on it
    trust_cli.py    `edge-console release install-trust`
    audit_merge.py  the console's audit log and its devices', merged and verified; CSV and JSON
    cli.py          `edge-console release | release-key | pair | push | rollback | audit`
"""
