"""The device's side of trust: its TLS identity, the consoles paired with it and their roles, pairing codes.

    device_trust.py   the pairings file, pairing codes, the device's identity
    pairing_guard.py  who may try the open pairing code, and how often
    cli.py            `edge-agent pair | pairings | unpair | enrol` on the device's own terminal
"""
