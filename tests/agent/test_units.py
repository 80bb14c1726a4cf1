"""Small agent parts on their own: the latest-frame slot, stream settings, history ring buffer, health."""

from __future__ import annotations

import threading
import time

import pytest
from edge_console.agent.health import assess
from edge_console.agent.history import TelemetryHistory
from edge_console.agent.latest_slot import LatestSlot
from edge_console.agent.server import StreamSettings
from edge_console.agent.sources import SourceSpec


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
    h = TelemetryHistory(tmp_path / "t.sqlite3", retention_s=1000, max_rows=50)
    now = time.time()
    for i in range(200):
        h.add({"ts": now - 2000 + i * 10, "fps_captured": i})
    assert h.count() <= 60  # pruned every 10 inserts to the last 50 rows and the retention window
    samples, more = h.since(0, limit=5)
    assert len(samples) == 5 and more and samples == sorted(samples, key=lambda s: s["ts"])
    assert all(s["ts"] >= now - 2000 + 199 * 10 - 1000 for s in h.since(0)[0])
    h.close()
    reopened = TelemetryHistory(tmp_path / "t.sqlite3")  # survives a restart
    assert reopened.count() > 0
    reopened.close()


def test_health_says_why():
    started = time.monotonic()
    assert assess(None, None, time.monotonic(), started, None).status == "ok"
    failing = assess("camera 0: no frame", None, None, started, None)
    assert failing.status == "failing" and failing.reasons == ["source: camera 0: no frame"]
    hot = assess(None, None, time.monotonic(), started, 91.0)
    assert hot.status == "degraded" and "temperature 91" in hot.reasons[0]
    stale = assess(None, None, time.monotonic() - 60, started - 60, None)
    assert stale.status == "degraded" and "no inferred frame for" in stale.reasons[0]


def test_source_kinds_and_password_redaction():
    assert SourceSpec("synthetic").kind == "synthetic" and SourceSpec("0").kind == "camera"
    assert SourceSpec("/data/line.mp4").kind == "file"
    rtsp = SourceSpec("rtsp://admin:secret@10.0.0.5/stream1")
    assert rtsp.kind == "stream" and "secret" not in rtsp.describe()["description"]
