"""Trust between programs: TLS identities (keys, self-signed certificates, TLS 1.3 contexts) and pairing by code.

    tls_identity.py      a program's own key and certificate, owner-only on disk
    pairing_protocol.py  SPAKE2 pairing by a one-time code that never crosses the network
"""
