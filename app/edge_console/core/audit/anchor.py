"""The signed head of a device's audit chain: what anchors the chain outside the device.

A hash chain shows an edited, inserted or deleted entry, but not a log rewritten whole (entries dropped and the
rest chained again) by someone who can write the device's state folder. So the device signs its chain's head
(sequence number and hash) with its TLS identity key, and every console that reads the log checks the signature
against the certificate it pinned at pairing and remembers the head. A later log that no longer holds that
hash at that number was rewritten or cut, whatever the device's own check says. The signature also lets a
console's export prove what the device said, to someone who trusts the device's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

CONTEXT = b"edge-audit-head/1"


@dataclass(frozen=True)
class SignedHead:
    device_id: str
    seq: int
    head: str  # the hash of entry #seq ("" for an empty log)
    signature: str  # hex, ECDSA P-256 / SHA-256 by the device's identity key

    def to_dict(self) -> dict:
        return {"device_id": self.device_id, "seq": self.seq, "head": self.head, "signature": self.signature}

    @classmethod
    def from_dict(cls, data: object) -> SignedHead:
        """ValueError when `data` is not a signed head (it comes from a device: untrusted)."""
        if not isinstance(data, dict):
            raise ValueError("the signed head is not an object")
        try:
            head = cls(str(data["device_id"])[:64], int(data["seq"]), str(data["head"])[:64],
                       str(data["signature"])[:512])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError("the signed head lacks device_id, seq, head or signature") from None
        if head.seq < 0:
            raise ValueError("the signed head has a negative sequence number")
        return head


def _message(device_id: str, seq: int, head: str) -> bytes:
    return b"\n".join([CONTEXT, device_id.encode(), str(seq).encode(), head.encode()])


def sign_head(key_pem: bytes, device_id: str, seq: int, head: str, passphrase: bytes | None = None) -> SignedHead:
    key = serialization.load_pem_private_key(key_pem, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the device's identity key is not an EC key")
    signature = key.sign(_message(device_id, seq, head), ec.ECDSA(hashes.SHA256()))
    return SignedHead(device_id, seq, head, signature.hex())


def head_is_signed_by(signed: SignedHead, cert_pem: bytes) -> bool:
    """True when `signed` was signed by the key of the certificate `cert_pem` (the device's pinned one)."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(bytes.fromhex(signed.signature), _message(signed.device_id, signed.seq, signed.head),
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
