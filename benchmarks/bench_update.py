"""Model updates, measured against baselines in the same run (issue 12).

1. Upload + verify throughput: a signed release sent to a real agent with tus (over its TLS API) until the device
   has verified it (TUF signatures, unpacked, every member's hash), against a raw loopback upload of the same bytes
   over TLS into a file on the same disk. Goal: ratio (raw time / upload-and-verify time) >= 0.8.
2. Rollback: from the operator's request to the first streamed frame made by the old model. Goal: < 1 s.
3. Frame gaps: a stream client at the agent's frame rate, through an activation and a rollback; the longest gap
   between frames against the normal interval (the median gap). Goal: <= 2x.

    python benchmarks/bench_update.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_console.bundle.demo import make_demo_release  # noqa: E402
from edge_console.core.paths import demo_model  # noqa: E402
from edge_console.core.protocol import decode_frame_message  # noqa: E402
from edge_console.core.release_trust import install_root  # noqa: E402
from edge_console.core.tls_identity import load_or_create_identity, server_context  # noqa: E402
from tests.support.agents import AgentProcess, agent_args  # noqa: E402
from tests.support.trust import console_identity, device_certificate, enrol, pinned_session  # noqa: E402
from tests.support.updates import install, upload  # noqa: E402

FPS = 20.0


async def raw_upload_s(data: bytes, folder: Path, identity, durable: bool) -> float:
    """The same bytes POSTed over loopback TLS into a file: the least any upload must cost. `durable`: also
    fsync the file, as a device must before it says "received" (power may go at any moment on a site)."""
    async def receive(request: web.Request) -> web.Response:
        with open(folder / "raw.bin", "wb") as out:
            async for chunk in request.content.iter_chunked(1 << 20):
                out.write(chunk)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        return web.Response(status=204)

    app = web.Application(client_max_size=len(data) + 1)
    app.router.add_post("/raw", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(identity, []))
    await site.start()
    port = runner.addresses[0][1]
    times = []
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as s:
        for _ in range(3):
            t0 = time.perf_counter()
            async with s.post(f"https://127.0.0.1:{port}/raw", data=data) as r:
                assert r.status == 204
            times.append(time.perf_counter() - t0)
    await runner.cleanup()
    return min(times)


async def upload_and_verify_s(s: aiohttp.ClientSession, url: str, release: Path) -> tuple[float, str]:
    """tus upload (one PATCH, as a client on a good link sends it) until the device's "verified" event; the
    events socket says when, without polling that would cost the device CPU."""
    async with s.ws_connect(url + "/v1/updates/events?after=latest") as events:
        t0 = time.perf_counter()
        upload_id = await upload(s, url, release, chunk=64 << 20)
        uploaded = time.perf_counter()
        update_id = await install(s, url, upload_id)
        while True:
            event = json.loads((await events.receive(timeout=60)).data)
            if event.get("id") == update_id and event.get("state") != "staged":
                break
    assert event["state"] in ("verified", "checked", "active", "good"), event
    print(json.dumps({"upload_only_s": round(uploaded - t0, 4)}), flush=True)
    return time.perf_counter() - t0, update_id


class FrameWatch:
    def __init__(self) -> None:
        self.frames: list[tuple[float, str]] = []  # (arrival, model version)

    async def run(self, s: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> None:
        async with s.ws_connect(url + f"/v1/stream?max_fps={FPS * 2}&max_width=320&quality=60") as ws:
            while not stop.is_set():
                msg = await ws.receive(timeout=30)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    header, _ = decode_frame_message(msg.data)
                    self.frames.append((time.perf_counter(), header.model_version))

    def gaps(self, t0: float, t1: float) -> list[float]:
        times = [t for t, _ in self.frames if t0 <= t <= t1]
        return [b - a for a, b in zip(times, times[1:])]


async def measure(url: str, state: Path, console, release: Path, folder: Path) -> dict:
    data = release.read_bytes()
    identity = load_or_create_identity(folder / "raw-tls", "raw")
    raw = await raw_upload_s(data, folder, identity, durable=True)
    raw_page_cache = await raw_upload_s(data, folder, identity, durable=False)
    stop = asyncio.Event()
    watch = FrameWatch()
    async with pinned_session(console, device_certificate(state)) as s:
        watcher = asyncio.create_task(watch.run(s, url, stop))
        await asyncio.sleep(3)
        t_update = time.perf_counter()
        updated, update_id = await upload_and_verify_s(s, url, release)
        while True:  # until the new model serves
            async with s.get(f"{url}/v1/updates/{update_id}") as r:
                record = await r.json()
            if record["state"] in ("active", "good", "rejected"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)
        t_rollback = time.perf_counter()
        async with s.post(url + "/v1/models/rollback", json={}) as r:
            assert r.status == 200, await r.text()
        while not any(t > t_rollback and v == "1.0.0" for t, v in watch.frames):
            await asyncio.sleep(0.001)
        rollback_s = next(t for t, v in watch.frames if t > t_rollback and v == "1.0.0") - t_rollback
        await asyncio.sleep(2)
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
    normal = statistics.median(watch.gaps(0, t_update))
    activation_gaps = watch.gaps(t_update, t_rollback)
    rollback_gaps = watch.gaps(t_rollback, time.perf_counter())
    return {
        "release_mb": round(len(data) / 2**20, 2),
        "raw_upload_fsync_s": round(raw, 4),
        "raw_upload_no_fsync_s": round(raw_page_cache, 4),
        "upload_and_verify_s": round(updated, 4),
        "throughput_ratio": round(raw / updated, 3),
        "golden": record.get("figures", {}).get("golden"),
        "device_verify_ms": record.get("figures", {}).get("verify_ms"),
        "rollback_to_old_model_frame_s": round(rollback_s, 3),
        "normal_frame_interval_ms": round(normal * 1e3, 1),
        "longest_gap_activation_ms": round(max(activation_gaps) * 1e3, 1),
        "longest_gap_rollback_ms": round(max(rollback_gaps) * 1e3, 1),
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        demo = make_demo_release(folder / "kit")
        state = folder / "state"
        install_root(state / "release-trust", demo.authority.root_json())
        console = console_identity(folder / "console")
        enrol(state, console, "operator")
        config = folder / "agent.toml"
        config.write_text("insecure_lab_mode = false\nprobation_s = 600\n")
        agent = AgentProcess(agent_args(demo_model("parts-v1"), state, "--config", str(config), "--no-advertise",
                                        "--fps", str(FPS), secure=True))
        try:
            result = asyncio.run(measure(agent.url, state, console, demo.release, folder))
        finally:
            agent.stop()
    result = {"benchmark": "update", **result}
    result["goal_throughput_ratio_ge_0_8"] = result["throughput_ratio"] >= 0.8
    result["goal_rollback_lt_1s"] = result["rollback_to_old_model_frame_s"] < 1.0
    limit = 2 * result["normal_frame_interval_ms"]
    result["goal_gaps_le_2x"] = max(result["longest_gap_activation_ms"], result["longest_gap_rollback_ms"]) <= limit
    print(json.dumps(result))


if __name__ == "__main__":
    main()
