"""A program's own TLS identity (key + self-signed certificate), kept owner-only on disk, and TLS 1.3 contexts.

There is no certificate authority on an air-gapped site: each agent and each console makes its own key pair on
first start, and the two sides pin each other's certificate when they pair (see pairing_protocol.py). A pinned
self-signed certificate is loaded as the only trust anchor of a connection, so TLS itself checks "this exact
certificate, signed by its own key" and nothing else. Certificates are valid for decades on purpose: expiry
cannot protect a pinned certificate, it could only lock a rarely visited site out of its devices. For the same
reason validity times are not checked at all on our connections: a device without a real-time clock comes back
from a power cut days or years off, and would otherwise refuse its paired console (or be refused by it) until
someone set its clock.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_console.core.atomic_files import write_atomic
from edge_console.core.disk_reserve import essential
from edge_console.core.errors import EdgeConsoleError

KEY_FILE = "identity.key"
CERT_FILE = "identity.crt"
VALIDITY_DAYS = 50 * 365
# Valid from long before any device's clock can say (a clock reset to its epoch after a power cut included).
NOT_VALID_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
# OpenSSL's X509_V_FLAG_NO_CHECK_TIME (1.1.0+; Python names no constant for it): trust a pinned certificate
# whatever the two clocks say.
NO_CHECK_TIME = 0x200000
SHORT_FINGERPRINT_CHARS = 16  # shown to people and put in mDNS TXT records: 64 bits, enough to tell devices apart


class IdentityError(EdgeConsoleError):
    """The key or certificate cannot be read (wrong passphrase, damaged file); the message says what to do."""


@dataclass(frozen=True)
class TlsIdentity:
    folder: Path
    cert_pem: bytes
    fingerprint: str  # SHA-256 of the certificate (DER), lower-case hex
    passphrase: bytes | None = None

    @property
    def key_path(self) -> Path:
        return self.folder / KEY_FILE

    @property
    def cert_path(self) -> Path:
        return self.folder / CERT_FILE

    @property
    def short_fingerprint(self) -> str:
        return short_fingerprint(self.fingerprint)


def certificate_fingerprint(cert: bytes) -> str:
    """SHA-256 of a certificate given as PEM or DER, lower-case hex."""
    der = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER) if cert.lstrip().startswith(
        b"-----BEGIN") else cert
    return hashlib.sha256(der).hexdigest()


def short_fingerprint(fingerprint: str) -> str:
    """`3f2a9c01b7e4d5a6` -> `3f2a-9c01-b7e4-d5a6`: the prefix people compare by eye."""
    head = fingerprint[:SHORT_FINGERPRINT_CHARS]
    return "-".join(head[i:i + 4] for i in range(0, len(head), 4))


def write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically and owner-only (0600) from the first byte: never briefly world-readable. An
    essential write (core/disk_reserve.py): pairings and codes are written through here."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    essential(lambda: write_atomic(path, data, mode=0o600))


def _make(common_name: str, dns_names: list[str], passphrase: bytes | None) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A unique subject: a pinned self-signed certificate is its own issuer, and TLS finds an issuer by name, so two
    # consoles both called "console" would each be checked against the other's key.
    unique = os.urandom(6).hex()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name[:48]} {unique}"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, unique)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOT_VALID_BEFORE)
               .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                                        critical=False)
    cert = builder.sign(key, hashes.SHA256())
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def load_or_create_identity(folder: Path, common_name: str, dns_names: list[str] | None = None,
                            passphrase: bytes | None = None) -> TlsIdentity:
    """The identity kept in `folder`, made on first use. Files are repaired to owner-only if found wider."""
    folder = Path(folder)
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    if not (key_path.exists() and cert_path.exists()):
        key_pem, cert_pem = _make(common_name, dns_names or [], passphrase)
        write_private(key_path, key_pem)  # the key first: a certificate without its key is useless
        write_private(cert_path, cert_pem)
    for path in (folder, key_path, cert_path):
        if path.stat().st_mode & 0o077:
            path.chmod(0o700 if path.is_dir() else 0o600)
    cert_pem = cert_path.read_bytes()
    try:
        serialization.load_pem_private_key(key_path.read_bytes(), passphrase)
    except (ValueError, TypeError) as exc:
        hint = ("the passphrase is wrong, or the key needs one" if "password" in str(exc).lower() or
                "encrypted" in str(exc).lower() else "the file is damaged")
        raise IdentityError(f"cannot read the private key {key_path}: {hint}. If it is lost, move the folder "
                            f"{folder} aside to make a new identity (every pairing must then be made again).") from None
    return TlsIdentity(folder, cert_pem, certificate_fingerprint(cert_pem), passphrase)


def _tls13(protocol: int) -> ssl.SSLContext:
    # A bare context, not create_default_context(): that one trusts the system's public CAs, and a certificate
    # any public CA signed would then pass where only the pinned one may.
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_flags |= NO_CHECK_TIME  # only pinned certificates are ever trusted here (module docstring)
    return ctx


def server_context(identity: TlsIdentity, trusted_client_certs: list[bytes]) -> ssl.SSLContext:
    """TLS 1.3 server. A client may come without a certificate (to read the minimal info and to pair); one that
    presents a certificate must present one of `trusted_client_certs` (the paired consoles). More can be added
    to the live context with `trust_client(ctx, pem)` as consoles pair."""
    ctx = _tls13(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(identity.cert_path, identity.key_path, password=identity.passphrase)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    for pem in trusted_client_certs:
        trust_client(ctx, pem)
    return ctx


def trust_client(ctx: ssl.SSLContext, cert_pem: bytes) -> None:
    ctx.load_verify_locations(cadata=cert_pem.decode("ascii"))


def client_context(identity: TlsIdentity | None, pinned_server_cert: bytes | None) -> ssl.SSLContext:
    """TLS 1.3 client presenting `identity` (None: no client certificate, for pairing) that accepts exactly the
    pinned server certificate (None: any certificate; only for the pairing exchange, which checks the
    certificate's fingerprint inside the password-authenticated exchange instead)."""
    ctx = _tls13(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # devices are reached by address; the pin, not a name, says who they are
    if pinned_server_cert is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=pinned_server_cert.decode("ascii"))
    if identity is not None:
        ctx.load_cert_chain(identity.cert_path, identity.key_path, password=identity.passphrase)
    return ctx


def peer_certificate(ssl_object) -> bytes | None:
    """The DER certificate the other side presented on a connection, if any."""
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)
