"""Regression test for D7, found by the field trial's clock faults: a device more than a day off the console's
clock locked its paired console out. Identities were valid from "now - 1 day" and TLS checked validity times even
for pinned certificates: a device behind (no RTC, its clock restored from an old value after a power cut) refused
the console's certificate ("no longer paired"), and a console refused the certificate of a device whose clock was
ahead when it made it ("not yet valid"). The identities here are made the way the old code made them, so the
test holds for devices and consoles paired before the fix. Real agents, their clock moved with libfaketime.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_console.core.trust.tls_identity import CERT_FILE, KEY_FILE, load_or_create_identity, write_private
from tests.support.trust import pinned_session

from .devices import FAKETIME_LIB, faketime_env

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(FAKETIME_LIB is None, reason="needs libfaketime (apt-get install faketime)")]


def _identity_made_the_old_way(folder: Path, made_at: datetime.datetime) -> None:
    """A key and self-signed certificate valid from a day before `made_at` (what _make wrote before the fix)."""
    key = ec.generate_private_key(ec.SECP256R1())
    unique = os.urandom(6).hex()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"old identity {unique}"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, unique)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(made_at - datetime.timedelta(days=1))
            .not_valid_after(made_at + datetime.timedelta(days=50 * 365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    write_private(folder / KEY_FILE, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    write_private(folder / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("skew", ["-3d", "+3d"], ids=["device-3-days-behind", "device-3-days-ahead"])
def test_a_device_days_off_the_consoles_clock_still_serves_its_paired_console(tmp_path, skew, start_secure_agent):
    now = datetime.datetime.now(datetime.UTC)
    days = int(skew[:-1])
    console_folder = tmp_path / "console"
    if days < 0:  # the console's certificate, made today, is "not yet valid" on the device
        _identity_made_the_old_way(console_folder, now)

    def device_identity(state: Path) -> None:
        if days > 0:  # made by the device when its clock was already ahead: "not yet valid" for the console
            _identity_made_the_old_way(state / "tls", now + datetime.timedelta(days=days))

    env = dict(os.environ, **faketime_env(skew))
    agent = start_secure_agent(tmp_path, role="operator", env=env, before_start=device_identity,
                               console=load_or_create_identity(console_folder, "test console"))
    try:
        async def scenario():
            async with pinned_session(agent.console, agent.certificate()) as s, s.get(agent.url + "/v1/info") as r:
                return r.status, (await r.json()).get("caller_role")

        assert asyncio.run(scenario()) == (200, "operator")
    finally:
        agent.stop()
