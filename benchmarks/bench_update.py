"""Model updates, measured against baselines in the same run (issue 12).

1. Upload + verify throughput: a signed release sent to a real agent with tus (over its TLS API) until the device
   has verified it (TUF signatures, unpacked, every member's hash), against a raw loopback upload of the same bytes
   over TLS into a file on the same disk, fsynced. Goal: ratio (raw time / upload-and-verify time) >= 0.8.
   Both are medians of REPEATS, taken under the same load (a stream client watches throughout) after a warm-up
   (the raw one's first request; one upload that is deleted). The first delivery is verified and installed; the
   later ones of the same release are verified in full and then refused as not newer than installed: the time
   to that verdict is the same work.
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

from benchmarks.agent_start import start_agent  # noqa: E402
from edge_console.bundle.demo import make_demo_release  # noqa: E402
from edge_console.core.paths import demo_model  # noqa: E402
from edge_console.core.protocol import decode_frame_message  # noqa: E402
from edge_console.core.releases.trust import install_root  # noqa: E402
from edge_console.core.trust.tls_identity import load_or_create_identity, server_context  # noqa: E402
from tests.support.trust import console_identity, device_certificate, enrol, pinned_session  # noqa: E402
from tests.support.updates import TUS, install, upload  # noqa: E402

FPS = 20.0
REPEATS = 5


async def raw_upload_s(data: bytes, folder: Path, identity, durable: bool) -> list[float]:
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
        for _ in range(REPEATS + 1):
            t0 = time.perf_counter()
            async with s.post(f"https://127.0.0.1:{port}/raw", data=data) as r:
                assert r.status == 204
            times.append(time.perf_counter() - t0)
    await runner.cleanup()
    return times[1:]  # the first opened the connection


async def warm_up(s: aiohttp.ClientSession, url: str, release: Path) -> float:
    """One upload of the same bytes, then deleted: the measured ones find the connection open and the device's
    code warm, as the raw baseline's do."""
    t0 = time.perf_counter()
    await delete_upload(s, url, await upload(s, url, release, chunk=64 << 20))
    return time.perf_counter() - t0


async def upload_and_verify_s(s: aiohttp.ClientSession, url: str, release: Path) -> tuple[float, float, dict]:
    """tus upload (one PATCH, as a client on a good link sends it) until the device's verdict on the release: the
    "verified" event, or a refusal that comes after the verification; the events socket says when, without
    polling that would cost the device CPU. Returns (upload+verify s, upload only s, the verdict event)."""
    async with s.ws_connect(url + "/v1/updates/events?after=latest") as events:
        t0 = time.perf_counter()
        upload_id = await upload(s, url, release, chunk=64 << 20)
        uploaded = time.perf_counter()
        update_id = await install(s, url, upload_id)
        while True:
            event = json.loads((await events.receive(timeout=60)).data)
            if event.get("id") == update_id and event.get("state") != "staged":
                break
    return time.perf_counter() - t0, uploaded - t0, event


async def delete_upload(s: aiohttp.ClientSession, url: str, upload_id: str) -> None:
    async with s.delete(f"{url}/v1/uploads/{upload_id}", headers=TUS) as r:
        assert r.status == 204, await r.text()


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
    stop = asyncio.Event()
    watch = FrameWatch()
    async with pinned_session(console, device_certificate(state)) as s:
        watcher = asyncio.create_task(watch.run(s, url, stop))
        await asyncio.sleep(3)
        # The baseline under the same load as the upload it is compared with: the stream client runs throughout.
        raw = await raw_upload_s(data, folder, identity, durable=True)
        raw_page_cache = await raw_upload_s(data, folder, identity, durable=False)
        cold = await warm_up(s, url, release)
        t_update = time.perf_counter()
        first, first_upload, event = await upload_and_verify_s(s, url, release)
        assert event["state"] == "verified", event
        updates, uploads = [first], [first_upload]
        update_id = event["id"]
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
        t_repeats = time.perf_counter()
        for _ in range(REPEATS - 1):  # the same release again: verified in full, then refused as not newer
            took, upload_only, event = await upload_and_verify_s(s, url, release)
            assert event["state"] == "rejected" and "older than installed" in event.get("reason", ""), event
            updates.append(took)
            uploads.append(upload_only)
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
    normal = statistics.median(watch.gaps(0, t_update))
    activation_gaps = watch.gaps(t_update, t_rollback)
    rollback_gaps = watch.gaps(t_rollback, t_repeats)
    median = statistics.median
    return {
        "release_mb": round(len(data) / 2**20, 2),
        "repeats": REPEATS,
        "raw_upload_fsync_s": round(median(raw), 4),
        "raw_upload_no_fsync_s": round(median(raw_page_cache), 4),
        "first_upload_cold_s": round(cold, 4),
        "upload_only_s": round(median(uploads), 4),
        "upload_and_verify_s": round(median(updates), 4),
        "upload_and_verify_all_s": [round(t, 4) for t in updates],
        "throughput_ratio": round(median(raw) / median(updates), 3),
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
        agent = start_agent(demo_model("parts-v1"), state, "--config", str(config), "--no-advertise",
                            "--fps", str(FPS), secure=True)
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
