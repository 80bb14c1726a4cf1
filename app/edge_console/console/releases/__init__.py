"""Releases on the console's side (issue 13), Qt-free: the library of imported release files (verified as a device
would), the console's delivery signing, pushing to one device (tus upload, then the device's own progress),
staged rollouts persisted in the console's database, the merged audit trail, and the headless commands.

    library.py      import, verify, list; the console's release trust
    delivery.py     the console's delivery key; fresh snapshot/timestamp for each push
    push.py         one device: upload (resumable), install, follow; rollback
    rollout.py      canaries, batches, halting, resuming, undoing; eligibility of a device for a release
    audit_merge.py  the console's audit log and its devices', merged and verified; CSV and JSON
    cli.py          `edge-console release | release-key | pair | push | rollback | audit`
"""
