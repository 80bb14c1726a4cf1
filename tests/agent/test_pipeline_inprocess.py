"""The agent in this process, served over real HTTP on 127.0.0.1: model swap, encode-once, slow clients."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from zeroconf import ServiceBrowser, Zeroconf

from edge_console.agent.config import AgentConfig
from edge_console.agent.serve import serving
from edge_console.core.detection.detector import Detector
from edge_console.core.protocol import SERVICE_TYPE, decode_frame_message
from tests.support.agent_harness import stalled_websocket, wait_until


@contextlib.asynccontextmanager
async def running_agent(model, state_dir, advertise=False, fps=20.0):
    """The agent in this process through the same `serving` as `edge-agent run`, on 127.0.0.1 only."""
    config = AgentConfig(model=str(model), name="In-process", port=0, interfaces=["127.0.0.1"],
                         state_dir=str(state_dir), fps=fps, threads=1, advertise=advertise,
                         insecure_lab_mode=True).validate()  # the pipeline is tested here; trust in test_trust.py
    async with serving(config) as served:
        yield served.agent, served.url


async def receive_frames(ws, n: int) -> list:
    out = []
    while len(out) < n:
        msg = await ws.receive(timeout=30)
        if msg.type == aiohttp.WSMsgType.BINARY:
            out.append(decode_frame_message(msg.data)[0])
    return out


def advertised_txt(zc: Zeroconf, device_id: str) -> dict[str, str] | None:
    for name in list(zc.cache.names()):
        if not name.endswith(SERVICE_TYPE.lower()):
            continue
        info = zc.get_service_info(SERVICE_TYPE, name, timeout=1000)
        txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()} if info else {}
        if txt.get("id") == device_id:
            return txt
    return None


def test_model_swap_keeps_capture_and_stream_clients_and_updates_mdns(parts_v1, parts_v2, tmp_path):
    zc = Zeroconf(interfaces=["127.0.0.1"])  # loopback only
    browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[lambda **_: None])

    async def scenario():
        async with running_agent(parts_v1, tmp_path, advertise=True) as (agent, url), aiohttp.ClientSession() as s, \
                s.ws_connect(url + "/v1/stream?max_fps=20") as ws:
            before = await receive_frames(ws, 3)
            txt_before = await asyncio.to_thread(wait_until, lambda: advertised_txt(zc, agent.id), 30, 0.2, "TXT")
            captured_before = agent.stats.snapshot().captured
            await agent.swap_model(Detector(parts_v2, intra_op_threads=1))
            after = []
            while len(after) < 200 and (not after or after[-1].model_version != "2.0.0"):
                after += await receive_frames(ws, 1)
            assert agent.stats.snapshot().captured > captured_before and agent.capture.is_alive()
            txt_after = await asyncio.to_thread(
                wait_until, lambda: (t := advertised_txt(zc, agent.id)) and t["model_version"] == "2.0.0" and t,
                30, 0.2, "updated TXT")
            async with s.get(url + "/v1/info") as r:
                info = await r.json()
            return before, after, info, txt_before, txt_after

    try:
        before, after, info, txt_before, txt_after = asyncio.run(scenario())
    finally:
        browser.cancel()
        zc.close()
    assert {h.model_version for h in before} == {"1.0.0"}
    assert after[-1].model_version == "2.0.0" and after[-1].seq > before[-1].seq
    assert info["model"]["version"] == "2.0.0"
    assert (txt_before["model"], txt_before["model_version"]) == ("parts", "1.0.0")
    assert (txt_after["model"], txt_after["model_version"]) == ("parts", "2.0.0")


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


def test_a_stalled_client_slows_nobody_and_holds_no_backlog(parts_v2, tmp_path):
    async def scenario():
        async with running_agent(parts_v2, tmp_path, fps=30) as (agent, url), aiohttp.ClientSession() as s:
            port = int(url.rsplit(":", 1)[1])
            stalled = await asyncio.to_thread(stalled_websocket, port)
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
