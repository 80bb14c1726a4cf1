"""Every endpoint of a real agent process, end to end over HTTP and WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import cv2
import numpy as np
import pytest

from edge_console.core.detection.detector import Detector
from edge_console.core.protocol import FRAME_CONTENT_TYPE, TELEMETRY_FIELDS, decode_frame_message
from edge_console.core.scene.conveyor import ConveyorScene
from tests.support.agent_harness import Agent, wait_until


@pytest.fixture(scope="module")
def agent(parts_v2, tmp_path_factory):
    agent = Agent(tmp_path_factory.mktemp("agent") / "state", model=parts_v2, name="API camera", fps=10,
                  secure=False, advertise=True).start()  # the API itself, in plain HTTP (insecure lab mode)
    yield agent
    assert agent.stop() == 0


def run(coro):
    return asyncio.run(coro)


async def get(url: str, **kw):
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
        body = await r.read()
        return r.status, r.headers, body


def test_info_describes_device_model_and_source(agent, parts_v2):
    status, _, body = run(get(agent.url + "/v1/info"))
    info = json.loads(body)
    assert status == 200
    assert info["id"] == agent.device_id and info["name"] == "API camera" and info["api_version"] == 1
    hw = info["hardware"]
    assert hw["arch"] and hw["cpu_count"] >= 1 and hw["memory_mb"] > 0
    assert hw["provider"] in hw["providers_available"]
    model = info["model"]
    assert model["name"] == "parts" and model["version"] == "2.0.0" and model["classes"] == ["bolt", "nut", "washer", "bracket"]
    assert len(model["sha256"]) == 64 and model["layout"] == "yolov8"
    # The size frames are actually fed at (issue 16): parts-v2 has a fixed square input.
    wait_until(lambda: "used_width" in json.loads(run(get(agent.url + "/v1/info"))[2])["model"]["input"],
               what="a first frame")
    used = json.loads(run(get(agent.url + "/v1/info"))[2])["model"]["input"]
    assert (used["used_width"], used["used_height"], used["rectangular"]) == (320, 320, False)
    assert info["source"]["kind"] == "synthetic" and info["uptime_s"] >= 0


def test_health_is_ok_and_time_is_the_agent_clock(agent):
    status, _, body = run(get(agent.url + "/v1/health"))
    assert status == 200 and json.loads(body) == {"status": "ok", "reasons": []}
    before = time.time()
    _, _, body = run(get(agent.url + "/v1/time"))
    # Same machine, same clock: the agent's time lies between our two readings.
    assert before - 1 <= json.loads(body)["time"] <= time.time() + 1


def test_frame_is_lossless_with_its_detections(agent, parts_v2):
    wait_until(lambda: run(get(agent.url + "/v1/frame"))[0] == 200, what="a first inferred frame")
    status, headers, body = run(get(agent.url + "/v1/frame"))
    assert status == 200 and headers["Content-Type"] == FRAME_CONTENT_TYPE
    header, bmp = decode_frame_message(body)
    assert bmp.startswith(b"BM")
    image = cv2.imdecode(np.frombuffer(bmp, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (header.height, header.width, 3) == (480, 640, 3)
    assert header.model_version == "2.0.0" and header.seq > 0 and header.timings.inference_ms > 0
    assert header.detections, "parts-v2 finds parts on the conveyor"
    for d in header.detections:
        assert 0 <= d.x1 < d.x2 <= 640 and 0 <= d.y1 < d.y2 <= 480
    # The very pixels that were inferred: the synthetic camera's frame #seq is scene frame seq-1 (a pure function
    # of the seed), and running the same model here on those pixels gives the detections the header carries.
    expected, _ = ConveyorScene(640, 480, seed=0).frame(header.seq - 1)
    assert np.array_equal(image, expected), "the lossless frame differs from the captured one"
    local = Detector(parts_v2, intra_op_threads=1).detect(expected).detections
    assert [d.class_name for d in local] == [d.class_name for d in header.detections]
    assert np.allclose([d.confidence for d in local], [d.confidence for d in header.detections], atol=1e-3)
    assert np.allclose([d.box for d in local], [d.box for d in header.detections], atol=0.01)
    status, headers, plain = run(get(agent.url + "/v1/frame?format=png"))
    assert status == 200 and headers["Content-Type"] == "image/png" and int(headers["X-Edge-Seq"]) > 0
    status, _, body = run(get(agent.url + "/v1/frame?format=framed-png"))
    header_png, png = decode_frame_message(body)
    assert png.startswith(b"\x89PNG")
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (header_png.height, header_png.width, 3)


def test_frame_after_waits_for_the_next_frame(agent):
    wait_until(lambda: run(get(agent.url + "/v1/frame"))[0] == 200, what="a first inferred frame")
    first, _ = decode_frame_message(run(get(agent.url + "/v1/frame"))[2])
    nxt, _ = decode_frame_message(run(get(agent.url + f"/v1/frame?after={first.seq}"))[2])
    assert nxt.seq > first.seq
    # A number beyond this run's (a client that saw an earlier run of the agent) gets the newest frame at once.
    restarted, _ = decode_frame_message(run(get(agent.url + "/v1/frame?after=99999999"))[2])
    assert restarted.seq >= nxt.seq
    status, _, body = run(get(agent.url + "/v1/frame?after=-1"))
    assert status == 400 and "after must be" in json.loads(body)["detail"]


def test_telemetry_history_pages_and_rejects_bad_queries(agent):
    samples = wait_until(lambda: json.loads(run(get(agent.url + "/v1/telemetry/history?since=0"))[2])["samples"],
                         what="history samples")
    assert set(TELEMETRY_FIELDS) <= set(samples[0])
    one = json.loads(run(get(agent.url + "/v1/telemetry/history?since=0&limit=1"))[2])
    assert len(one["samples"]) == 1
    wait_until(lambda: len(json.loads(run(get(agent.url + "/v1/telemetry/history?since=0"))[2])["samples"]) >= 3,
               what="three history samples")
    newest = json.loads(run(get(agent.url + "/v1/telemetry/history?limit=2"))[2])  # no since: the newest N
    every = json.loads(run(get(agent.url + "/v1/telemetry/history?since=0"))[2])["samples"]
    assert [x["ts"] for x in newest["samples"]] == [x["ts"] for x in every[-2:]] and newest["more"]
    later = json.loads(run(get(agent.url + f"/v1/telemetry/history?since={samples[-1]['ts']}"))[2])
    assert all(s["ts"] > samples[-1]["ts"] for s in later["samples"])
    for query in ("since=yesterday", "since=0&limit=-3", "since=nan", "since=" + "9" * 5000):
        status, headers, body = run(get(agent.url + "/v1/telemetry/history?" + query))
        assert status == 400 and json.loads(body)["error"] == "bad query", query


def test_malformed_requests_get_json_errors_and_the_agent_stays_up(agent):
    status, _, body = run(get(agent.url + "/v1/nope"))
    assert status == 404 and json.loads(body)["error"] == "Not Found"
    status, _, body = run(get(agent.url + "/v1/frame?format=gif"))
    assert status == 400 and "format" in json.loads(body)["detail"]
    status, _, body = run(get(agent.url + "/v1/stream?max_fps=9999"))
    assert status == 400 and "max_fps" in json.loads(body)["detail"]
    status, _, _ = run(get(agent.url + "/v1/info?junk=" + "x" * 200_000))  # beyond any sane URL
    assert 400 <= status < 500
    assert run(get(agent.url + "/v1/health"))[0] == 200


async def _stream_session(url: str):
    async with aiohttp.ClientSession() as s, s.ws_connect(url + "/v1/stream?max_width=320&quality=60&max_fps=10") as ws:
        frames = []
        while len(frames) < 3:
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.BINARY
            frames.append(decode_frame_message(msg.data))
        await ws.send_json({"type": "ping", "t0": 123.5})
        await ws.send_str("{not json")
        await ws.send_bytes(b"\x00garbage")
        await ws.send_json({"type": "configure", "quality": 1000})
        await ws.send_json({"type": "configure", "max_width": 160})
        replies = []
        while len(replies) < 5:
            msg = await ws.receive(timeout=30)
            if msg.type == aiohttp.WSMsgType.TEXT:
                replies.append(json.loads(msg.data))
        after = None
        while after is None:  # frames keep coming after the garbage, now at the new width
            msg = await ws.receive(timeout=30)
            if msg.type == aiohttp.WSMsgType.BINARY:
                header, jpeg = decode_frame_message(msg.data)
                img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                after = img.shape[1] if img.shape[1] == 160 else None
        return frames, replies, after


def test_stream_sends_header_and_jpeg_of_the_same_frame_and_survives_garbage(agent):
    frames, replies, width_after = run(_stream_session(agent.url))
    seqs = [h.seq for h, _ in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    for header, jpeg in frames:
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape[1] == 320 and (header.width, header.height) == (640, 480)
    kinds = [r["type"] for r in replies]
    assert kinds == ["pong", "error", "error", "error", "configured"]
    assert replies[0]["t0"] == 123.5 and replies[0]["server_time"] > 0
    assert "quality=1000 is out of range" in replies[3]["error"]
    assert width_after == 160


async def _oversized_message(url: str):
    async with aiohttp.ClientSession() as s, s.ws_connect(url + "/v1/stream") as ws:
        await ws.send_str("x" * 100_000)
        while True:
            msg = await ws.receive(timeout=30)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return ws.close_code


def test_oversized_client_message_closes_only_that_socket(agent):
    assert run(_oversized_message(agent.url)) == 1009  # "message too big"
    assert run(get(agent.url + "/v1/health"))[0] == 200


async def _telemetry(url: str):
    async with aiohttp.ClientSession() as s, s.ws_connect(url + "/v1/telemetry") as ws:
        # The first samples of an agent that has just started (on a busy machine) may come before its first frame.
        for _ in range(15):
            first = json.loads((await ws.receive(timeout=30)).data)
            if first.get("fps_captured") and first.get("latency_p50_ms"):
                break
        await ws.send_json({"type": "ping", "t0": 1.0})
        while True:
            msg = json.loads((await ws.receive(timeout=30)).data)
            if msg.get("type") == "pong":
                return first, msg


def test_telemetry_socket_sends_complete_samples(agent):
    sample, pong = run(_telemetry(agent.url))
    assert set(TELEMETRY_FIELDS) <= set(sample)
    assert sample["fps_captured"] > 0 and sample["latency_p50_ms"] > 0
    assert sample["latency_p50_ms"] <= sample["latency_p95_ms"] <= sample["latency_p99_ms"]
    assert sample["temperature_c"] is None or isinstance(sample["temperature_c"], float)
    assert sample["health"]["status"] == "ok" and sample["rss_mb"] > 0
    assert pong["t0"] == 1.0
