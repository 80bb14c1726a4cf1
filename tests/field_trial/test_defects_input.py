"""Regression tests for D6, found by the field trial's fuzzing: JSON from the network and from files parsed without
bounds. A deeply nested document made Python's json recurse into RecursionError, and `1e999` (JSON for a float
infinity) made `int()` raise OverflowError; neither is the error each parser promises, so a stream task died, an
import crashed, an agent could not start on its own audit log, and API bodies were a 500 with a traceback.
Parsers in-process; the API on a real agent (TLS on). benchmarks/FIELD_TRIAL.md lists every defect.
"""

from __future__ import annotations

import asyncio
import io
import tarfile

import pytest

from tests.support.trust import pinned_session

pytestmark = pytest.mark.timeout(120)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


@pytest.mark.parametrize("header", [_deep(100_000), b'{"seq": Infinity, "capture_ts": 1, "width": 1, "height": 1}',
                                    b'{"seq": 1e999, "capture_ts": 1, "width": 1, "height": 1}',
                                    b'{"seq": 1, "capture_ts": 1, "width": 1, "height": 1, "detections": [{"box": '
                                    b'[0, 0, 1, 1], "class_id": 1e999, "class_name": "x", "confidence": 1}]}'],
                         ids=["nested", "infinity", "1e999", "infinite-class"])
def test_a_malformed_frame_header_is_a_protocol_error(header):
    """The console's stream task catches ProtocolError; anything else ended the stream for good."""
    from edge_console.core.protocol import ProtocolError, decode_frame_message

    with pytest.raises(ProtocolError):
        decode_frame_message(len(header).to_bytes(4, "big") + header + b"\xff\xd8")


def test_a_manifest_with_an_infinite_size_is_a_bundle_error():
    from edge_console.core.releases.file_format import FORMAT, BundleError, BundleManifest

    with pytest.raises(BundleError):
        BundleManifest.from_dict({"format": FORMAT, "model_line": "parts", "version": "2.0.0", "model": {},
                                  "members": {"model.onnx": {"sha256": "0" * 64, "size": float("inf")}},
                                  "golden": {"frames": []}})


@pytest.mark.parametrize("manifest", [_deep(200_000), b'{"format": "edge-bundle/1", "model_line": "parts", "version": '
                                                      b'"2.0.0", "model": {}, "golden": {"frames": []}, "members": '
                                                      b'{"model.onnx": {"sha256": "", "size": 1e999}}}'],
                         ids=["nested", "1e999"])
def test_a_hostile_manifest_is_refused_as_a_bad_release(tmp_path, manifest):
    """stage_release refuses it, or finishes and leaves the problem for verify_staged: never another exception."""
    from edge_console.core.releases.file_format import BundleError
    from edge_console.core.releases.stream import stage_release
    from edge_console.core.releases.trust import ReleaseTrustError

    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w") as tar:
        info = tarfile.TarInfo("targets/parts-2.0.0.edgebundle")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    try:
        staged = stage_release(io.BytesIO(outer.getvalue()), tmp_path / "staged")
    except (BundleError, ReleaseTrustError):
        return
    assert staged.manifest is None and staged.problem


@pytest.mark.parametrize("line", [b'{"seq": 1e999, "hash": "x", "prev": ""}', _deep(50_000)], ids=["1e999", "nested"])
def test_an_audit_log_with_a_hostile_last_line_still_opens(tmp_path, line):
    """The agent (and the console) open their audit log at start: a damaged last line must not stop them."""
    from edge_console.core.audit.log import AuditLog

    path = tmp_path / "audit.log"
    path.write_bytes(line + b"\n")
    log = AuditLog(path)
    assert log.verify().ok is False  # a broken chain is reported, not a crash
    assert log.entries() == []
    log.append("test", "after damage")


@pytest.mark.parametrize("path,body,as_console", [
    ("/v1/pair/start", _deep(5000), False),  # open to anyone on the network
    ("/v1/pair/finish", _deep(5000), False),
    ("/v1/pairing-codes", _deep(5000), True),
    ("/v1/updates", _deep(5000), True),
    ("/v1/models/rollback", b'{"version": ' + _deep(5000) + b"}", True),
])
def test_a_hostile_json_body_is_a_400(secure_agent, path, body, as_console):
    async def scenario():
        if path == "/v1/pair/start":  # its body is read only while a code is open on the device
            async with pinned_session(secure_agent.console, secure_agent.certificate()) as s, \
                    s.post(secure_agent.url + "/v1/pairing-codes", json={"role": "viewer"}) as r:
                assert r.status == 200
        async with pinned_session(secure_agent.console if as_console else None, secure_agent.certificate()) as s, \
                s.post(secure_agent.url + path, data=body, headers={"Content-Type": "application/json"}) as r:
            return r.status

    assert asyncio.run(scenario()) == 400


@pytest.mark.parametrize("body", [b"null", b"{ not json", _deep(5000), b'{"signed": {"_type": "root"}}'],
                         ids=["null", "not-json", "nested", "not-root"])
def test_a_release_trust_body_that_is_not_root_metadata_is_a_400(secure_agent, body):
    """PUT /v1/release-trust/root was a 500 (DeserializationError, a traceback in the log) for such a body."""
    async def scenario():
        async with pinned_session(secure_agent.console, secure_agent.certificate()) as s, \
                s.put(secure_agent.url + "/v1/release-trust/root", data=body) as r:
            return r.status, await r.json()

    status, answer = asyncio.run(scenario())
    assert status == 400 and answer["error"] == "not a root.json", answer
