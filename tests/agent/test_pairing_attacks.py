"""Issue 21 (4, 11): pairing under an attacker on the network. Real agent processes over TLS on 127.0.0.1; the
attacker comes from other loopback addresses (127.0.0.2, 127.0.0.3), as another host on the site's network would.

Before: five junk starts from anyone burnt the owner's code, /v1/info told strangers a code was open, and one
code paired two consoles.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.pairing_client import pair
from edge_console.core.trust.pairing_protocol import MAX_FAILURES, MAX_GUESSES, ConsoleExchange
from tests.support.agent_harness import Agent, agent_cli, pairing_code, wait_until
from tests.support.trust import console_identity


def _session(fingerprint: str, source: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(bytes.fromhex(fingerprint)), local_addr=(source, 0))
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))


async def _post(session: aiohttp.ClientSession, port: int, path: str, body: dict) -> tuple[int, dict]:
    async with session.post(f"https://127.0.0.1:{port}{path}", json=body) as r:
        return r.status, await r.json(content_type=None)


def _start_body(identity, code: str, device_fp: str) -> tuple[ConsoleExchange, dict]:
    exchange = ConsoleExchange(code, identity.fingerprint, device_fp)
    return exchange, {"console_name": "attacker", "console_cert": identity.cert_pem.decode(),
                      "message": exchange.start().hex()}


@pytest.fixture
def device(parts_v2, tmp_path):
    state = tmp_path / "state"
    agent = Agent(state, model=parts_v2, console=None).start()  # no console paired: the tests pair by code
    yield agent, state
    agent.stop()


def test_strangers_cannot_burn_the_owners_code_nor_learn_that_one_is_open(device, tmp_path):
    agent, state = device
    port, device_fp = agent.port, agent.fingerprint
    code = pairing_code(state, "admin").replace("-", "")
    wrong = f"{(int(code) + 1) % 10 ** 8:08d}"
    attacker = console_identity(tmp_path / "attacker")

    async def attack() -> tuple[list[int], dict]:
        statuses = []
        async with _session(device_fp, "127.0.0.2") as s:
            async with s.get(f"https://127.0.0.1:{port}/v1/info") as r:
                info = await r.json()
            for _ in range(MAX_FAILURES + 3):
                junk = {"console_name": "x", "console_cert": attacker.cert_pem.decode(), "message": "00" * 33}
                statuses.append((await _post(s, port, "/v1/pair/start", junk))[0])
                for _ in range(10):  # a burst on top: refused by the rate, never counted as guesses
                    statuses.append((await _post(s, port, "/v1/pair/start", junk))[0])
                await asyncio.sleep(1.05)
            # A real exchange with a wrong code from a third address: counted for that address only.
        async with _session(device_fp, "127.0.0.3") as s:
            _, body = _start_body(attacker, wrong, device_fp)
            statuses.append((await _post(s, port, "/v1/pair/start", body))[0])
        return statuses, info

    statuses, info = asyncio.run(attack())
    assert "pairing_code_open" not in info and info["caller_role"] is None
    assert statuses.count(400) == MAX_FAILURES  # five junk exchanges were taken (and counted) from 127.0.0.2
    assert set(statuses) <= {400, 429, 200} and statuses[-1] == 200  # 127.0.0.3 still got its one guess

    # The owner, from 127.0.0.1, pairs with the code the device showed: it was not burnt.
    me = console_identity(tmp_path / "owner")
    result = asyncio.run(pair(DeviceAddress("127.0.0.1", port), code, me, "Owner's laptop"))
    assert result.role == "admin"
    # What happened is on the device's terminal (its log), naming the address that guessed.
    said = wait_until(lambda: "127.0.0.2" in (log := "".join(agent.stderr_lines())) and log, 10,
                      what="the device's log to name the guessing address")
    assert "may not try this code again" in said
    assert "Owner's laptop" in agent_cli("pairings", "--state-dir", str(state)).stdout


def test_an_address_that_guessed_wrong_too_often_is_told_so_and_refused(device, tmp_path):
    agent, state = device
    port, device_fp = agent.port, agent.fingerprint
    code = pairing_code(state, "viewer").replace("-", "")
    attacker = console_identity(tmp_path / "attacker")

    async def guesses() -> list[tuple[int, dict]]:
        out = []
        async with _session(device_fp, "127.0.0.2") as s:
            for n in range(MAX_FAILURES + 1):
                guess = f"{(int(code) + 1 + n) % 10 ** 8:08d}"
                _, body = _start_body(attacker, guess, device_fp)
                out.append(await _post(s, port, "/v1/pair/start", body))
                await asyncio.sleep(1.05)
            _, body = _start_body(attacker, code, device_fp)  # even the right code, from there
            out.append(await _post(s, port, "/v1/pair/start", body))
        return out

    answers = asyncio.run(guesses())
    assert [status for status, _ in answers[:MAX_FAILURES]] == [200] * MAX_FAILURES
    assert [body["attempts_left"] for _, body in answers[:MAX_FAILURES]] == list(range(MAX_FAILURES - 1, -1, -1))
    for status, body in answers[MAX_FAILURES:]:
        assert status == 429 and "may not try this code again" in body["detail"]


def test_one_code_pairs_one_console(device, tmp_path):
    agent, state = device
    port, device_fp = agent.port, agent.fingerprint
    code = pairing_code(state, "operator").replace("-", "")
    first, second = console_identity(tmp_path / "first"), console_identity(tmp_path / "second")

    async def both() -> list[tuple[int, dict]]:
        started = []
        for identity, source in ((first, "127.0.0.2"), (second, "127.0.0.3")):
            async with _session(device_fp, source) as s:
                exchange, body = _start_body(identity, code, device_fp)
                status, reply = await _post(s, port, "/v1/pair/start", body)
                assert status == 200, reply
                confirmation = exchange.finish(bytes.fromhex(reply["message"]), bytes.fromhex(reply["confirmation"]))
                started.append((source, reply["pairing_id"], confirmation))
        finished = []
        for source, pairing_id, confirmation in started:  # both exchanges were right; only one may pair
            async with _session(device_fp, source) as s:
                finished.append(await _post(s, port, "/v1/pair/finish",
                                            {"pairing_id": pairing_id, "confirmation": confirmation.hex()}))
        return finished

    finished = asyncio.run(both())
    assert [status for status, _ in finished] == [200, 409]
    assert "another console paired with this code" in finished[1][1]["detail"]
    assert len(TrustStore(state).pairings()) == 1


def test_a_code_burns_after_the_guesses_of_everyone_together(tmp_path):
    store = TrustStore(tmp_path)
    store.issue_code("viewer")
    lefts = [store.note_failure() for _ in range(MAX_GUESSES)]
    assert lefts[0] == MAX_GUESSES - 1 and lefts[-1] == 0
    assert store.open_code() is None  # burnt: a new one must be opened on the device


def test_pairing_changes_made_on_the_device_terminal_are_audited(device, tmp_path):
    agent, state = device
    pairing_code(state, "operator")
    cert = console_identity(tmp_path / "scripted").cert_path
    assert agent_cli("enrol", "--certificate", str(cert), "--role", "viewer", "--name", "line PC",
                     "--state-dir", str(state)).returncode == 0
    pairing_id = agent_cli("pairings", "--state-dir", str(state)).stdout.split()[0]
    assert agent_cli("unpair", pairing_id, "--state-dir", str(state)).returncode == 0
    time.sleep(0.2)
    entries = [line for line in (state / "audit.log").read_text().splitlines() if line]
    events = [e for e in entries if '"device terminal"' in e]
    assert any('"pairing code issued"' in e for e in events)
    assert any('"paired"' in e and "line PC" in e for e in events)
    assert any('"pairing revoked"' in e for e in events)
    verified = agent_cli("audit", "verify", "--state-dir", str(state))
    assert verified.returncode == 0, verified.stdout


def test_terminal_commands_say_which_agent_they_act_on_and_warn_when_none_runs(device, tmp_path):
    """Issue 22 (11): `trust-root` and `pair` without --state-dir "succeeded" on a folder no running agent used."""
    agent, state = device
    here = agent_cli("pair", "--role", "viewer", "--state-dir", str(state))
    assert here.returncode == 0 and f"acting on the agent running on {state}" in here.stderr
    assert f"pid {agent.pid}" in here.stderr
    elsewhere = tmp_path / "unused"
    there = agent_cli("pair", "--role", "viewer", "--state-dir", str(elsewhere))
    assert there.returncode == 0 and "warning: no agent is running on" in there.stderr, there.stderr
    root = tmp_path / "root.json"
    from edge_console.bundle.authority import ReleaseAuthority

    root.write_bytes(ReleaseAuthority.create(tmp_path / "authority").root_json())
    trusted = agent_cli("trust-root", str(root), "--state-dir", str(elsewhere))
    assert trusted.returncode == 0 and "warning: no agent is running on" in trusted.stderr
