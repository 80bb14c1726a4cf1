"""Staging a release as it arrives gives what staging its file gives, and checking its signatures early never
lets a release through that the check at install would refuse (real signed releases, real TUF metadata)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from edge_console.core.releases import preverify as release_preverify
from edge_console.core.releases.file_format import BundleError
from edge_console.core.releases.preverify import commit, preverify
from edge_console.core.releases.stream import ReleaseStager, stage_release, verify_staged
from edge_console.core.releases.trust import ReleaseTrustError, install_root
from tests.support.updates import build, flip_bundle_byte, rewrite_bundle, sign_unchecked, signed_release


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    base = tmp_path_factory.mktemp("staging-kit")
    authority = ReleaseAuthority.create(base / "authority")
    good = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(base / "golden", count=3), base)
    model = bytearray(demo_model("parts-v2").read_bytes())
    model[len(model) // 2] ^= 1
    lies = rewrite_bundle(good, base / "lies.edgebundle", replace={"model.onnx": bytes(model)}, rehash=False)
    release = signed_release(authority, good, base / "good.edgerelease").read_bytes()
    text = rewrite_bundle(good, base / "text.edgebundle", replace={"model.onnx": b"not a model\n"})
    variants = {
        "good": release,
        "manifest lies": signed_release(authority, lies, base / "lies.edgerelease").read_bytes(),
        "cut short": release[: len(release) // 2],
        "not a tar": b"\x89PNG\r\n" + bytes(2000),
        "altered": flip_bundle_byte(release),
        "padded": release + bytes(20 * 512),  # a tar writer's padding after the end: nothing carried along
        "carries more": release + random.Random(3).randbytes(200_000),  # something appended after the end
        "not onnx": sign_unchecked(authority, text, base / "text.edgerelease").read_bytes(),
    }
    return {"base": base, "authority": authority, "good": good, "variants": variants}


def _outcome(stage) -> tuple:
    """What staging found: the figures and every file it wrote, or the error it raised."""
    try:
        staged = stage()
    except (ReleaseTrustError, BundleError) as exc:
        return ("refused", type(exc).__name__, str(exc))
    files = {p.relative_to(staged.folder).as_posix(): p.read_bytes()
             for p in sorted(staged.folder.rglob("*")) if p.is_file()}
    return (staged.bundle_name, staged.bundle_length, staged.bundle_sha256, staged.manifest, staged.problem, files)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variant=st.sampled_from(["good", "manifest lies", "cut short", "not a tar", "altered", "padded",
                                "carries more", "not onnx"]),
       cuts=st.lists(st.integers(1, 1 << 22), max_size=10))
def test_pushed_in_any_chunking_a_release_stages_as_its_file_does(kit, tmp_path_factory, variant, cuts):
    data = kit["variants"][variant]
    folder = tmp_path_factory.mktemp("stage")

    def pushed():
        stager = ReleaseStager(folder / "pushed")
        start = 0
        for cut in sorted({c % len(data) for c in cuts} | {len(data)}):
            stager.feed(data[start:cut])
            start = cut
        return stager.finish()

    assert _outcome(pushed) == _outcome(lambda: stage_release(io.BytesIO(data), folder / "file"))


def _trust(tmp_path: Path, authority: ReleaseAuthority) -> Path:
    trust = tmp_path / "trust"
    install_root(trust, authority.root_json())
    return trust


def _staged(tmp_path: Path, release: Path, name: str):
    with open(release, "rb") as f:
        return stage_release(f, tmp_path / name)


def test_an_early_check_is_taken_only_against_the_trust_it_ran_on(tmp_path, kit):
    """Two deliveries checked early against the same trust; once the newer is installed, the older one's early
    check no longer counts, and the check at install refuses it as replayed."""
    authority, trust = kit["authority"], _trust(tmp_path, kit["authority"])
    older = _staged(tmp_path, signed_release(authority, kit["good"], tmp_path / "older.edgerelease"), "older")
    newer = _staged(tmp_path, signed_release(authority, kit["good"], tmp_path / "newer.edgerelease"), "newer")
    early_older, early_newer = (preverify(trust, s.folder, s.bundle_name, s.bundle_length, s.bundle_sha256)
                                for s in (older, newer))
    assert early_older and early_newer
    taken = commit(trust, early_newer, newer.bundle_dir)
    assert taken is not None and taken.checked_on_arrival and taken.sha256 == newer.bundle_sha256
    assert commit(trust, early_older, older.bundle_dir) is None  # the trust it ran on is gone
    with pytest.raises(ReleaseTrustError, match="replayed or old release metadata"):
        verify_staged(trust, older)


def test_an_early_check_leaves_the_trust_as_the_full_check_would(tmp_path, kit):
    release = signed_release(kit["authority"], kit["good"], tmp_path / "r.edgerelease")
    staged = _staged(tmp_path, release, "staged")
    early_trust, full_trust = _trust(tmp_path / "a", kit["authority"]), _trust(tmp_path / "b", kit["authority"])
    pre = preverify(early_trust, staged.folder, staged.bundle_name, staged.bundle_length, staged.bundle_sha256)
    assert release_preverify._trust_files(early_trust) == pre.trusted_before  # untouched until taken
    early = commit(early_trust, pre, staged.bundle_dir)
    full = verify_staged(full_trust, staged)
    assert early.sha256 == full.sha256 and early.targets_version == full.targets_version and not full.checked_on_arrival
    assert release_preverify._trust_files(early_trust) == release_preverify._trust_files(full_trust)


def test_a_stale_or_failed_early_check_is_not_taken(tmp_path, kit, monkeypatch):
    trust = _trust(tmp_path, kit["authority"])
    staged = _staged(tmp_path, signed_release(kit["authority"], kit["good"], tmp_path / "r.edgerelease"), "s")
    pre = preverify(trust, staged.folder, staged.bundle_name, staged.bundle_length, staged.bundle_sha256)
    monkeypatch.setattr(release_preverify, "FRESH_S", -1.0)
    assert commit(trust, pre, staged.bundle_dir) is None
    assert preverify(trust, staged.folder, staged.bundle_name, staged.bundle_length, "0" * 64) is None
    assert preverify(tmp_path / "no-trust", staged.folder, staged.bundle_name, staged.bundle_length,
                     staged.bundle_sha256) is None


def test_what_follows_a_release_and_a_model_that_is_not_onnx_are_judged_as_staged(kit, tmp_path):
    """Padding after the tar's end is a release file as written; more is refused while it streams; a model that is
    not ONNX is a problem of the bundle, reported (after the signatures) with its name."""
    def stage(name):
        return stage_release(io.BytesIO(kit["variants"][name]), tmp_path / name)

    padded = stage("padded")
    assert padded.problem == "" and padded.bundle_sha256 == stage("good").bundle_sha256
    with pytest.raises(ReleaseTrustError, match="goes on after its end"):
        stage("carries more")
    staged = stage("not onnx")
    assert staged.problem.startswith("model.onnx of parts 2.0.0 is not an ONNX model")
