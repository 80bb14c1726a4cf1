"""A source that disappears leaves the agent up and failing with the reason; it recovers when the source returns."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import cv2
import numpy as np

from edge_console.core.scene.conveyor import ConveyorScene
from tests.support.agent_harness import Agent, wait_until


def write_video(path, frames: int = 8, fps: float = 10.0) -> None:
    scene = ConveyorScene(width=320, height=240, seed=3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for i in range(frames):
        writer.write(scene.frame(i)[0])
    writer.release()


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + "/v1/health", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_file_source_goes_away_and_comes_back(parts_v2, tmp_path):
    video = tmp_path / "line.avi"
    write_video(video)
    agent = Agent(tmp_path / "state", model=parts_v2, source=str(video), secure=False).start()
    try:
        wait_until(lambda: health(agent.url) == (200, {"status": "ok", "reasons": []}), what="healthy agent")
        video.rename(tmp_path / "moved.avi")  # the USB stick was pulled
        status, body = wait_until(lambda: (h := health(agent.url))[0] == 503 and h, what="failing health")
        assert body["status"] == "failing"
        assert any("video file not found" in r and "retrying" in r for r in body["reasons"]), body
        (tmp_path / "moved.avi").rename(video)
        wait_until(lambda: health(agent.url)[0] == 200, what="recovery")
        with urllib.request.urlopen(agent.url + "/v1/info", timeout=10) as r:
            assert json.loads(r.read())["source"]["kind"] == "file"
    finally:
        assert agent.stop() == 0


def test_camera_that_does_not_exist_reports_and_keeps_serving(parts_v2, tmp_path):
    agent = Agent(tmp_path / "state", model=parts_v2, source="7", secure=False).start()
    try:
        status, body = wait_until(lambda: (h := health(agent.url))[0] == 503 and h, what="failing health")
        assert any("camera 7" in r for r in body["reasons"]), body
        with urllib.request.urlopen(agent.url + "/v1/info", timeout=10) as r:
            assert r.status == 200
        try:
            urllib.request.urlopen(agent.url + "/v1/frame", timeout=10)
            raise AssertionError("a frame without a source")
        except urllib.error.HTTPError as err:
            assert err.code == 503 and "camera 7" in json.loads(err.read())["detail"]
    finally:
        assert agent.stop() == 0


def test_write_video_round_trips():
    # Guards the test above: if OpenCV here cannot read what it wrote, the recovery test means nothing.
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.avi"
        write_video(p, frames=3)
        cap = cv2.VideoCapture(str(p))
        ok, frame = cap.read()
        cap.release()
        assert ok and frame.shape == (240, 320, 3) and np.asarray(frame).std() > 5
