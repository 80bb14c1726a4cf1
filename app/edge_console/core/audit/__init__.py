"""The audit trail: hash-chained entries, the append-only log file, and the signed head that anchors it.

    chain.py   hash-chained entries
    log.py     the append-only log file, shared by processes (file lock)
    anchor.py  the chain's signed head, checked by consoles against the device's pinned certificate
"""
