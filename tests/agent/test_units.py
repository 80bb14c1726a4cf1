"""Small agent parts on their own: the latest-frame slot, stream settings, history ring buffer, health."""

from __future__ import annotations

import threading
import time

import pytest

from edge_console.agent.api.server import StreamSettings
from edge_console.agent.health import assess
from edge_console.agent.history import TelemetryArchive
from edge_console.agent.pipeline.latest_slot import LatestSlot
from edge_console.agent.pipeline.sources import SourceSpec
from edge_console.agent.pipeline.stats import PipelineSnapshot


def test_slot_keeps_only_the_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    version, item = slot.take_newer(0, timeout=1)
    assert item == 4 and slot.dropped == 4
    assert slot.take_newer(version, timeout=0.01) == (version, None)
    slot.put(5)  # the previous item was taken: not a drop
    assert slot.take_newer(version, timeout=1)[1] == 5 and slot.dropped == 4


def test_slot_wakes_a_waiting_consumer():
    slot: LatestSlot[str] = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take_newer(0, timeout=30)[1]))
    t.start()
    slot.put("frame")
    t.join(30)
    assert got == ["frame"]


def test_stream_settings_are_all_or_nothing():
    s = StreamSettings()
    s.update({"max_fps": "5", "quality": "50", "max_width": "320"})
    assert (s.max_fps, s.quality, s.max_width) == (5.0, 50, 320)
    for bad, msg in (({"quality": 5}, "quality=5 is out of range"), ({"max_fps": "fast"}, "max_fps must be a number"),
                     ({"max_width": 8}, "at least 32"), ({"max_fps": float("nan")}, "out of range")):
        with pytest.raises(ValueError, match=msg):
            s.update({"max_width": 640, **bad})
        assert s.max_width == 320  # nothing applied from a rejected message


def test_history_is_a_bounded_ring_buffer(tmp_path, monkeypatch):
    monkeypatch.setattr("edge_console.agent.history.PRUNE_EVERY", 10)
    h = TelemetryArchive(tmp_path / "t.sqlite3", retention_s=1000, max_rows=50)
    now = time.time()
    for i in range(200):
        h.add({"ts": now - 2000 + i * 10, "fps_captured": i})
    assert h.count() <= 60  # pruned every 10 inserts to the last 50 rows and the retention window
    samples, more = h.since(0, limit=5)
    assert len(samples) == 5 and more and samples == sorted(samples, key=lambda s: s["ts"])
    assert all(s["ts"] >= now - 2000 + 199 * 10 - 1000 for s in h.since(0)[0])
    newest, older = h.since(None, limit=3)  # no `since`: the newest N, oldest first
    assert [s["fps_captured"] for s in newest] == [197, 198, 199] and older
    h.close()
    reopened = TelemetryArchive(tmp_path / "t.sqlite3")  # survives a restart
    assert reopened.count() > 0
    reopened.close()


def snapshot(at: float, *, captured=0, dropped=0, inferred=0, model_errors=0, source_error=None,
             model_error=None, last_inference_at=None) -> PipelineSnapshot:
    return PipelineSnapshot(at, captured, dropped, inferred, 0, model_errors, 0, source_error, model_error,
                            last_inference_at)


def test_health_says_why():
    t = time.monotonic()
    ok = snapshot(t, last_inference_at=t)
    assert assess(ok, None, t).status == "ok"
    failing = assess(snapshot(t, source_error="camera 0: no frame"), None, t)
    assert failing.status == "failing" and failing.reasons == ["source: camera 0: no frame"]
    hot = assess(ok, None, t, temperature_c=91.0)
    assert hot.status == "degraded" and "temperature 91" in hot.reasons[0]
    stale = assess(snapshot(t, last_inference_at=t - 60), None, t - 60)
    assert stale.status == "degraded" and "no inferred frame for" in stale.reasons[0]
    dead_loop = assess(ok, None, t, problems=["telemetry failed: OSError(24) (restarting in 1 s)"])
    assert dead_loop.status == "failing" and "telemetry failed" in dead_loop.reasons[0]


def test_health_is_degraded_when_the_model_cannot_keep_up_with_the_camera():
    t = time.monotonic()
    before = snapshot(t - 30, captured=100, dropped=10, inferred=90, last_inference_at=t - 30)
    half_dropped = snapshot(t, captured=550, dropped=310, inferred=330, last_inference_at=t)
    verdict = assess(half_dropped, before, t - 60)
    assert verdict.status == "degraded" and "dropping 67% of camera frames" in verdict.reasons[0]
    keeping_up = snapshot(t, captured=550, dropped=40, inferred=600, last_inference_at=t)
    assert assess(keeping_up, before, t - 60).status == "ok"
    flaky_model = snapshot(t, captured=550, dropped=10, inferred=530, model_errors=3, last_inference_at=t)
    verdict = assess(flaky_model, before, t - 60)
    assert verdict.status == "degraded" and "model failed on 3 frames" in verdict.reasons[0]


def test_source_kinds_and_password_redaction():
    assert SourceSpec("synthetic").kind == "synthetic" and SourceSpec("0").kind == "camera"
    assert SourceSpec("/data/line.mp4").kind == "file"
    rtsp = SourceSpec("rtsp://admin:secret@10.0.0.5/stream1")
    assert rtsp.kind == "stream" and "secret" not in rtsp.describe()["description"]
