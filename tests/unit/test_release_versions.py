"""The pieces issue 21's release fixes stand on: a signer's persisted version mark, versions reported by devices
(untrusted), the ONNX shape check, and roots that list a key twice (real keys, real TUF metadata)."""

from __future__ import annotations

import hashlib
import io
import json
import time

import pytest
from securesystemslib.signer import SSlibKey

from edge_console.core.detection.onnx_shape import MAX_TOP_LEVEL_FIELDS, onnx_file_problem, onnx_problem
from edge_console.core.paths import demo_model
from edge_console.core.releases.checks import canonical_keyid, root_key_problem
from edge_console.core.releases.metadata_versions import MAX_VERSION, VersionError, VersionMark, reported_version
from edge_console.core.releases.trust import ReleaseTrustError, SigningKey, install_root, new_root


def test_a_version_mark_never_goes_back_and_goes_above_what_it_is_told(tmp_path):
    mark = VersionMark(tmp_path / "delivery-version.json")
    first = mark.next()
    assert first >= time.time() * 1000 - 1000  # the clock at least (this process may have signed above it)
    ahead = first + 30 * 86_400_000
    assert mark.next(above=ahead) == ahead + 1
    (tmp_path / "delivery-version.json").write_text(json.dumps({"last_version": ahead + 5}))
    assert mark.next() == ahead + 6  # read back from the folder, as a new process would
    (tmp_path / "delivery-version.json").write_text("{damaged")
    assert mark.next() > 0  # an unreadable mark counts as none: the clock (and `above`) remain
    for bad in (-1, MAX_VERSION, "12", 1.5):
        with pytest.raises(VersionError, match="out of range"):
            mark.next(above=bad)


def test_versions_a_device_reports_are_honoured_only_when_they_are_sane():
    now = int(time.time() * 1000)
    a_year_ahead = now + 366 * 86_400_000  # a signer's clock a year fast: still honoured
    assert reported_version(a_year_ahead) == a_year_ahead
    for nonsense in (True, -5, now + 20 * 366 * 86_400_000, MAX_VERSION, 2**80, "1800000000000", 1.8e12, None, [1]):
        assert reported_version(nonsense) == 0  # a hostile device cannot drive a console's versions to the limit


def test_a_mark_at_the_end_of_the_range_says_so(tmp_path):
    path = tmp_path / "delivery-version.json"
    path.write_text(json.dumps({"last_version": MAX_VERSION}))
    with pytest.raises(VersionError, match="no snapshot/timestamp version is left"):
        VersionMark(path).next()


def test_the_onnx_shape_check_knows_models_from_other_files(tmp_path):
    assert onnx_file_problem(demo_model("parts-v2")) is None
    data = demo_model("parts-v2").read_bytes()
    assert "past the end" in onnx_problem(io.BytesIO(data[: len(data) // 2]), len(data) // 2)
    assert onnx_problem(io.BytesIO(b""), 0) == "it is empty"
    assert "not the start of a model field" in onnx_problem(io.BytesIO(b"PK\x03\x04" + bytes(64)), 68)
    assert onnx_problem(io.BytesIO(b"\x08\x07"), 2) == "it has no graph"  # an IR version alone
    tiny_fields = b"\x28\x01" * (MAX_TOP_LEVEL_FIELDS + 1)  # model_version, again and again
    assert "top-level fields" in onnx_problem(io.BytesIO(tiny_fields), len(tiny_fields))


def test_a_root_listing_one_key_twice_is_found_however_the_key_is_spelled(tmp_path):
    key = SigningKey.generate()
    root = new_root([key], [key], [key])
    assert root_key_problem(root.signed) is None and canonical_keyid(key.public) == key.keyid
    public = key.public
    shouted = SSlibKey(hashlib.sha256(b"x").hexdigest(), public.keytype, public.scheme,
                       {"public": public.keyval["public"].upper()})  # the same key, its hex in capitals
    root.signed.add_key(shouted, "targets")
    assert "one public key under two key ids" in root_key_problem(root.signed)
    root.signatures.clear()
    root.sign(key.signer)
    with pytest.raises(ReleaseTrustError, match="one public key under two key ids"):
        install_root(tmp_path / "trust", root.to_bytes())
    assert not (tmp_path / "trust" / "root.json").exists()


def test_the_offline_kit_check_counts_a_key_listed_twice_once():
    """bundle/kit_sums.py verifies with the standard library alone: it too counts keys, not key ids."""
    from edge_console.bundle.kit_sums import Root as KitRoot

    key = SigningKey.generate()
    public = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": key.public.keyval["public"]}}
    alias = hashlib.sha256(b"alias").hexdigest()
    root = KitRoot(1, {key.keyid: public, alias: public},
                   {"targets": {"keyids": [key.keyid, alias], "threshold": 2}}, b"", [])
    signature = key.signer.sign(b"message").signature
    signatures = [{"keyid": key.keyid, "sig": signature}, {"keyid": alias, "sig": signature}]
    assert root.count_valid("targets", b"message", signatures) == 1 < root.threshold("targets")
