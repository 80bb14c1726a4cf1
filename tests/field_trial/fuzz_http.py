"""The fuzz target for the agent's HTTP API: a real agent process over TLS with an admin console; see fuzz.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path

from hypothesis import strategies as st

from .fuzz_targets import _json_bytes, deep, json_values, number_texts


# -- the agent's HTTP API, served by a real agent (TLS, an admin console) ------------------------------------------
class FuzzAgent:
    """A real agent process (`edge-agent run`, TLS on, 127.0.0.1) and a pinned admin client on a loop thread; the
    agent's resident memory is read from /proc before and after (the fuzzer's own memory is not the agent's)."""

    def __init__(self, folder: Path) -> None:
        import aiohttp

        from edge_console.agent.trust.device_trust import TrustStore
        from edge_console.core.trust.tls_identity import client_context, load_or_create_identity
        from tests.support.agent_harness import Agent

        self.folder = folder
        self.state = folder / "agent-state"
        self.console = load_or_create_identity(folder / "console", "fuzz console")
        self.trust = TrustStore(self.state)
        self.trust.enrol("fuzz console", self.console.cert_pem, "admin")
        self.agent = Agent(self.state, model="parts-v1", name="fuzz", console=self.console, fps=5, size=(160, 120),
                           settings={"insecure_lab_mode": False}).start()
        self.base = self.agent.url
        cert = (self.state / "tls" / "identity.crt").read_bytes()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz client", daemon=True)
        self.thread.start()

        async def open_session():
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(self.console, cert)),
                                         timeout=aiohttp.ClientTimeout(total=20))

        self.session = self._run(open_session())
        self.rss_start = self.rss_mb()
        self.requests = 0
        self.rss_samples: list[float] = []  # every 1000 requests: flat once warm is what bounded means

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.agent.pid}/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))

    def request(self, method: str, path: str, **kw) -> tuple[int, str, bytes]:
        async def go():
            async with self.session.request(method, self.base + path, **kw) as r:
                return r.status, r.content_type, await r.read()

        self.requests += 1
        if self.requests % 1000 == 0:
            self.rss_samples.append(round(self.rss_mb(), 1))
        return self._run(go())

    def cut_short(self, path: str, body: bytes, missing: int) -> None:
        """A POST whose body stops `missing` bytes short of its Content-Length: the client goes away mid-body."""
        import socket

        from edge_console.core.trust.tls_identity import client_context

        context = client_context(self.console, (self.state / "tls" / "identity.crt").read_bytes())
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body) + missing}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", self.agent.port), timeout=10) as raw, \
                context.wrap_socket(raw) as tls:
            tls.sendall(head + body)
        self.requests += 1

    def unhandled(self) -> list[str]:
        return [line for line in self.agent.stderr_lines() if "unhandled error" in line]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.session.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.agent.stop()


def http_target(agent: FuzzAgent):
    from urllib.parse import quote

    ids = st.one_of(st.text(max_size=70), st.sampled_from(["..", "../../etc/passwd", "%2e%2e", "a" * 65, "0" * 32]))
    headers_values = st.one_of(number_texts, st.text(max_size=40), st.just("1.0.0"))
    bodies = st.one_of(json_values.map(_json_bytes), st.binary(max_size=100),
                       st.integers(1, 3000).map(lambda n: deep(n).encode()))
    safe = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40).map(lambda t: quote(t, safe=""))
    requests = st.one_of(
        st.tuples(st.just("GET"), st.tuples(safe, safe).map(lambda q: f"/v1/telemetry/history?since={q[0]}&limit={q[1]}"),
                  st.none(), st.none()),
        st.tuples(st.just("GET"), st.tuples(safe, st.sampled_from(["framed", "png", "x", "framed-png"])).map(
            lambda q: f"/v1/frame?after={q[0]}&format={q[1]}"), st.none(), st.none()),
        st.tuples(st.just("GET"), st.tuples(safe, safe, safe).map(
            lambda q: f"/v1/stream?max_fps={q[0]}&quality={q[1]}&max_width={q[2]}"), st.none(), st.none()),
        st.tuples(st.just("GET"), st.tuples(safe, safe).map(lambda q: f"/v1/audit?after={q[0]}&limit={q[1]}"),
                  st.none(), st.none()),
        st.tuples(st.just("GET"), safe.map(lambda q: f"/v1/audit/verify?head={q}"), st.none(), st.none()),
        st.tuples(st.just("GET"), ids.map(lambda i: f"/v1/updates/{quote(i, safe='')}"), st.none(), st.none()),
        st.tuples(st.just("POST"), st.just("/v1/updates"), bodies, st.none()),
        st.tuples(st.just("POST"), st.just("/v1/models/rollback"), bodies, st.none()),
        st.tuples(st.just("POST"), st.sampled_from(["/v1/pair/start", "/v1/pair/finish"]), bodies, st.none()),
        st.tuples(st.just("POST"), st.just("/v1/pair/start"), st.fixed_dictionaries({}, optional={
            "console_cert": json_values, "console_name": json_values, "message": st.one_of(
                json_values, st.binary(max_size=40).map(bytes.hex))}).map(_json_bytes), st.none()),
        st.tuples(st.just("POST"), st.just("/v1/pairing-codes"), bodies, st.none()),
        st.tuples(st.just("CUT"), st.sampled_from(["/v1/pair/start", "/v1/pair/finish", "/v1/updates",
                                                   "/v1/models/rollback", "/v1/pairing-codes", "/v1/nowhere"]),
                  st.binary(max_size=64), st.integers(1, 16000)),
        st.tuples(st.just("PUT"), st.just("/v1/release-trust/root"), bodies, st.none()),
        st.tuples(st.just("POST"), st.just("/v1/uploads"), st.none(), st.fixed_dictionaries({}, optional={
            "Tus-Resumable": headers_values, "Upload-Length": headers_values, "Upload-Metadata": st.text(max_size=60)})),
        st.tuples(st.sampled_from(["HEAD", "PATCH", "DELETE"]), ids.map(lambda i: f"/v1/uploads/{quote(i, safe='')}"),
                  st.binary(max_size=64), st.fixed_dictionaries({}, optional={
                      "Tus-Resumable": headers_values, "Upload-Offset": headers_values,
                      "Content-Type": st.sampled_from(["application/offset+octet-stream", "text/plain", "x"])})),
        # Ids percent-encoded into paths on the admin's DELETE (issue 21): whatever they are, nothing but a real
        # pairing id (or a 16+ character fingerprint prefix) may revoke a pairing, and no file may go.
        st.tuples(st.just("DELETE"), ids.map(lambda i: f"/v1/pairings/{quote(i, safe='')}"), st.none(), st.none()),
    )
    created: list[str] = []
    kept = ("pairings.json", "tls/identity.key", "tls/identity.crt", "device_id")

    def check(req) -> None:
        method, path, body, headers = req
        if method == "CUT":  # a body that never arrives in full (issue 21): nothing unhandled, and it goes on
            agent.cut_short(path, body, headers)
            assert not agent.unhandled(), agent.unhandled()[-1]
            return
        if path == "/v1/pair/start" and agent.trust.open_code() is None:
            agent.trust.issue_code("viewer")  # on the device's terminal: the body is read only while a code is open
        # Header values a client library can send at all (aiohttp refuses control characters itself).
        clean_headers = {k: "".join(c for c in v if c.isprintable() and c != "\x7f").encode("utf-8", "replace")
                         .decode("latin-1") for k, v in (headers or {}).items()}
        status, content_type, payload = agent.request(method, path, data=body, headers=clean_headers)
        assert status < 500 or status in (503, 507), f"{method} {path} -> {status}: {payload[:300]!r}"
        if status >= 400 and method != "HEAD":
            assert content_type == "application/json", f"{method} {path} -> {status} {content_type}"
            json.loads(payload)
        if status == 201 and path == "/v1/uploads":
            created.append(path)
        gone = [name for name in kept if not (agent.state / name).is_file()]
        assert not gone, f"{method} {path} removed {gone}"
        assert agent.trust.by_fingerprint(agent.console.fingerprint) is not None, f"{method} {path} revoked the admin"

    return requests, check
