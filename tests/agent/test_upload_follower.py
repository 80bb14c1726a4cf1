"""agent/updates/_follower.py: staging a release from an upload's bytes as they are written. It gives what staging
the finished file gives; anything that breaks the order of the bytes makes it step aside (the file is staged
instead) and clean up; and a release cannot make it, or the upload feeding it, wait for ever."""

from __future__ import annotations

import threading

import pytest

from edge_console.agent.updates._follower import PIPE_LIMIT, FollowAbandoned, UploadFollower
from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from edge_console.core.releases.stream import stage_release
from edge_console.core.releases.trust import install_root
from tests.support.updates import build, signed_release

CHUNK = 300_000


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    base = tmp_path_factory.mktemp("follower-kit")
    authority = ReleaseAuthority.create(base / "authority")
    bundle = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(base / "golden", count=3), base)
    install_root(base / "trust", authority.root_json())
    return {"data": signed_release(authority, bundle, base / "r.edgerelease").read_bytes(), "trust": base / "trust"}


def _feed(follower: UploadFollower, data: bytes, start: int = 0, end: int | None = None) -> None:
    end = len(data) if end is None else end
    for offset in range(start, end, CHUNK):
        follower.feed_at(offset, data[offset:min(offset + CHUNK, end)])


def test_it_stages_and_checks_what_the_file_would_give(tmp_path, release):
    data = release["data"]
    follower = UploadFollower(tmp_path / ".staging-a", len(data), release["trust"])
    _feed(follower, data, 0, len(data) // 2)
    _feed(follower, data, len(data) // 2)  # a second request resuming at the offset confirmed
    staged = follower.result()
    (tmp_path / "r").write_bytes(data)
    with open(tmp_path / "r", "rb") as f:
        from_file = stage_release(f, tmp_path / "from-file")
    assert (staged.bundle_sha256, staged.bundle_length, staged.manifest) == \
        (from_file.bundle_sha256, from_file.bundle_length, from_file.manifest)
    assert staged.preverified is not None and staged.preverified.target.sha256 == staged.bundle_sha256
    model = (staged.bundle_dir / "model.onnx").read_bytes()
    assert model == (from_file.bundle_dir / "model.onnx").read_bytes() == demo_model("parts-v2").read_bytes()


def test_bytes_out_of_order_make_it_step_aside_and_clean_up(tmp_path, release):
    """A PATCH superseded after it wrote: the device keeps only the confirmed offset, the client resends from
    there, and the follower, which saw the dropped bytes, must not take the resent ones as new."""
    data = release["data"]
    follower = UploadFollower(tmp_path / ".staging-b", len(data), release["trust"])
    _feed(follower, data, 0, 3 * CHUNK)
    _feed(follower, data, CHUNK)  # rewound to an earlier confirmed offset
    with pytest.raises(FollowAbandoned):
        follower.result()
    follower._thread.join(10)
    assert not (tmp_path / ".staging-b").exists()


def test_an_upload_left_unfinished_can_be_abandoned_while_its_stager_waits(tmp_path, release):
    data = release["data"]
    follower = UploadFollower(tmp_path / ".staging-c", len(data), release["trust"])
    _feed(follower, data, 0, len(data) // 3)
    follower.abandon()  # the upload expired or was deleted
    follower._thread.join(10)
    assert not follower._thread.is_alive() and not (tmp_path / ".staging-c").exists()
    with pytest.raises(FollowAbandoned):
        follower.result()


@pytest.mark.parametrize("tail", ["junk after the end", "not a release"])
def test_a_release_that_ends_early_or_is_refused_never_blocks_its_upload(tmp_path, release, tail):
    """Bytes the stager will never read (after the tar's end, or after it refused the release) must not fill
    the pipe and hold the upload's writer: far more than PIPE_LIMIT is fed here, from a thread that must finish."""
    data = release["data"] + bytes(3 * PIPE_LIMIT) if tail == "junk after the end" else b"\xff" * (3 * PIPE_LIMIT)
    follower = UploadFollower(tmp_path / ".staging-d", len(data), release["trust"])
    writer = threading.Thread(target=_feed, args=(follower, data), daemon=True)
    writer.start()
    writer.join(30)
    assert not writer.is_alive(), "the upload's writer is stuck behind a stager that stopped reading"
    if tail == "junk after the end":  # refused as it streams (issue 21: nothing of a release goes unread)
        with pytest.raises(Exception, match="goes on after its end"):
            follower.result()
    else:
        with pytest.raises(Exception, match="not a readable release file"):
            follower.result()
