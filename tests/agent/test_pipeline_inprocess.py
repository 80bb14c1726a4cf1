"""The agent in this process, served over real HTTP on 127.0.0.1: model swap, encode-once, slow clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket

import aiohttp
from aiohttp import web

from app.agent.config import AgentConfig
from app.agent.runtime import Agent
from app.agent.server import build_app
from app.core.detector import Detector
from app.core.protocol import decode_frame_message


@contextlib.asynccontextmanager
async def running_agent(model, state_dir, advertise=False, fps=20.0):
    config = AgentConfig(model=str(model), name="In-process", port=0, interfaces=["127.0.0.1"],
                         state_dir=str(state_dir), fps=fps, threads=1, advertise=advertise).validate()
    agent = Agent(config)
    runner = web.AppRunner(build_app(agent), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await agent.start(["127.0.0.1"], port)
    try:
        yield agent, f"http://127.0.0.1:{port}"
    finally:
        await agent.stop()
        await runner.cleanup()


async def receive_frames(ws, n: int) -> list:
    out = []
    while len(out) < n:
        msg = await ws.receive(timeout=30)
        if msg.type == aiohttp.WSMsgType.BINARY:
            out.append(decode_frame_message(msg.data)[0])
    return out


def test_model_swap_keeps_capture_and_stream_clients(parts_v1, parts_v2, tmp_path):
    async def scenario():
        async with running_agent(parts_v1, tmp_path) as (agent, url), aiohttp.ClientSession() as s, \
                s.ws_connect(url + "/v1/stream?max_fps=20") as ws:
            before = await receive_frames(ws, 3)
            captured_before = agent.capture.captured
            await agent.swap_model(Detector(parts_v2, intra_op_threads=1))
            after = []
            while len(after) < 200 and (not after or after[-1].model_version != "2.0.0"):
                after += await receive_frames(ws, 1)
            assert agent.capture.captured > captured_before and agent.capture.is_alive()
            async with s.get(url + "/v1/info") as r:
                info = await r.json()
            return before, after, info

    before, after, info = asyncio.run(scenario())
    assert {h.model_version for h in before} == {"1.0.0"}
    assert after[-1].model_version == "2.0.0" and after[-1].seq > before[-1].seq
    assert info["model"]["name"] == "parts-v2"


def test_each_frame_is_encoded_once_per_distinct_setting(parts_v2, tmp_path):
    async def scenario():
        async with running_agent(parts_v2, tmp_path) as (agent, url), aiohttp.ClientSession() as s:
            settings = ["max_width=320&quality=70"] * 3 + ["max_width=640&quality=90"]
            sockets = [await s.ws_connect(url + "/v1/stream?max_fps=60&" + q) for q in settings]
            encodes_before, seq_before = agent.hub.encodes, agent.hub.latest.seq if agent.hub.latest else 0
            await asyncio.gather(*(receive_frames(ws, 10) for ws in sockets))
            frames = agent.hub.latest.seq - seq_before + 1
            encodes = agent.hub.encodes - encodes_before
            for ws in sockets:
                await ws.close()
            return frames, encodes, agent.stats.streamed

    frames, encodes, streamed = asyncio.run(scenario())
    # Two distinct settings: at most two encodes per frame however many clients share them.
    assert encodes <= 2 * frames + 2, (encodes, frames)
    assert streamed >= 40


def _stalled_websocket(port: int) -> socket.socket:
    """A client that completes the WebSocket handshake and then never reads another byte."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/stream?max_fps=60 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def test_a_stalled_client_slows_nobody_and_holds_no_backlog(parts_v2, tmp_path):
    async def scenario():
        async with running_agent(parts_v2, tmp_path, fps=30) as (agent, url), aiohttp.ClientSession() as s:
            port = int(url.rsplit(":", 1)[1])
            stalled = await asyncio.to_thread(_stalled_websocket, port)
            fast, sent_to_stalled, seqs = 0, [], []
            try:
                async with s.ws_connect(url + "/v1/stream?max_fps=60") as ws:
                    # Until the stalled client's socket buffers are full and its sends stop, then some more.
                    for _ in range(40):
                        seqs += [h.seq for h in await receive_frames(ws, 30)]
                        fast += 30
                        sent_to_stalled.append(agent.stats.streamed - fast)
                        if len(sent_to_stalled) >= 4 and sent_to_stalled[-1] - sent_to_stalled[-4] <= 1:
                            break
                    cached = len(agent.hub._messages)
            finally:
                stalled.close()
            return seqs, sent_to_stalled, cached

    seqs, sent_to_stalled, cached = asyncio.run(scenario())
    assert len(sent_to_stalled) >= 4 and sent_to_stalled[-1] - sent_to_stalled[-4] <= 1, sent_to_stalled
    # The fast client got 90 fresh frames after the stalled one stopped taking any, in order, none repeated.
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert cached <= 1  # one frame's message, not a queue per client
