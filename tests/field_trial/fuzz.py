"""Property-based fuzzing (hypothesis) of every parser that reads the network or files, with a budget of inputs.

Each target feeds generated input to one parser and checks its contract: it either returns something well-formed
or raises the one error type it promises (ProtocolError, ConfigError, BundleError, ReleaseTrustError, a 4xx
answer, ...). Anything else is a failure, reported with the (shrunk) input. Per target we also record the slowest
input (a hang shows there) and the growth of the process's resident memory.

Targets: the stream framing (decode_frame_message), mDNS TXT records as the browser decodes them, WebSocket control
messages, stream settings (query values and configure messages), the agent's TOML config (load_toml / check_types /
build_config), the release manifest (BundleManifest.from_dict), release files (stage_release on random and on
structured bytes), the audit chain (verify_chain) and audit log files (AuditLog's recovery of torn files), and the
agent's HTTP API over TLS (history and frame queries, update and rollback bodies, pairing bodies, tus headers, audit
queries, release-trust bodies) served by a real agent process, whose memory is sampled as it goes.

Targets live in fuzz_targets.py and fuzz_http.py; this module runs them with a budget of inputs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from .corpus import quiet
from .fuzz_http import FuzzAgent, http_target
from .fuzz_targets import (
    audit_targets,
    config_targets,
    control_target,
    frame_target,
    manifest_target,
    stage_target,
    stream_settings_target,
    txt_target,
)


@dataclass
class TargetResult:
    name: str
    inputs: int = 0
    failure: str = ""
    known: str = ""  # a failure that is a known, reported defect (its xfail regression test pins it)
    slowest_s: float = 0.0
    rss_growth_mb: float = 0.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_target(name: str, strategy, check: Callable, budget: int, rng_seed: int,
               known: Callable[[BaseException], str | None] = lambda exc: None) -> TargetResult:
    result = TargetResult(name)
    seen_known: set[str] = set()
    before = rss_mb()

    @seed(rng_seed)
    @settings(max_examples=budget, database=None, deadline=None, derandomize=False, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink))
    @given(strategy)
    def prop(value) -> None:
        result.inputs += 1
        t0 = time.perf_counter()
        try:
            check(value)
        except BaseException as exc:
            why = known(exc)
            if why is None:
                raise
            if why not in seen_known:
                seen_known.add(why)
                result.known = "; ".join(sorted(seen_known))
        finally:
            result.slowest_s = max(result.slowest_s, time.perf_counter() - t0)

    try:
        prop()
    except BaseException as exc:  # noqa: BLE001 - reported, with the input hypothesis shrank it to
        if isinstance(exc, KeyboardInterrupt):
            raise
        parts = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
        texts = []
        for part in parts:
            tail = "".join(traceback.format_exception_only(type(part), part)).strip().splitlines()[0]
            note = "; ".join(getattr(part, "__notes__", []))
            texts.append(f"{tail[:400]} | {note[:500]}")
        result.failure = " || ".join(texts)
    result.rss_growth_mb = round(rss_mb() - before, 1)
    result.slowest_s = round(result.slowest_s, 4)
    return result


# -- the whole run ---------------------------------------------------------------------------------------------------
WEIGHTS = {"frame": 14, "txt": 12, "control": 7, "stream_settings": 9, "config_file": 6, "config_types": 5,
           "manifest": 12, "release_file": 8, "audit_chain": 9, "audit_file": 6, "http_api": 12}


def run_fuzz(total: int, rng_seed: int = 1, only: tuple[str, ...] | None = None, http: bool = True) -> dict:
    with quiet("edge_console.core.audit.log"):  # "a torn last entry was set aside": expected, thousands of times
        return _run_fuzz(total, rng_seed, only, http)


def _run_fuzz(total: int, rng_seed: int, only: tuple[str, ...] | None, http: bool) -> dict:
    t0 = time.monotonic()
    agent_end, agent_tracebacks = 0.0, 0
    results: list[TargetResult] = []
    folder = Path(tempfile.mkdtemp(prefix="edge-fuzz-"))
    agent = None
    try:
        (config_file, config_types) = config_targets(folder)
        (chain, files) = audit_targets(folder)
        targets = {"frame": frame_target(), "txt": txt_target(), "control": control_target(),
                   "stream_settings": stream_settings_target(), "config_file": config_file,
                   "config_types": config_types, "manifest": manifest_target(), "release_file": stage_target(folder),
                   "audit_chain": chain, "audit_file": files}
        names = [n for n in WEIGHTS if (only is None or n in only) and (http or n != "http_api")]
        weight = sum(WEIGHTS[n] for n in names)
        for i, name in enumerate(names):
            budget = max(20, total * WEIGHTS[name] // weight)
            if name == "http_api":
                agent = FuzzAgent(folder)
                target = http_target(agent)
            else:
                target = targets[name]
            strategy, check, *known = target
            results.append(run_target(name, strategy, check, budget, rng_seed + i, *known))
            if name == "http_api":
                agent_end = agent.rss_mb()
                agent_tracebacks = len(agent.unhandled())
    finally:
        if agent is not None:
            agent.close()
        shutil.rmtree(folder, ignore_errors=True)
    failures = [r for r in results if r.failure]
    agent_rss = {}
    if agent is not None:
        samples = agent.rss_samples
        half = samples[len(samples) // 2] if samples else agent.rss_start
        agent_rss = {"agent_requests": agent.requests, "agent_rss_mb_start": round(agent.rss_start, 1),
                     "agent_rss_mb_half": half, "agent_rss_mb_end": round(agent_end, 1),
                     "agent_rss_mb_second_half_growth": round(agent_end - half, 1),
                     "agent_tracebacks_logged": agent_tracebacks}
    return {"inputs": sum(r.inputs for r in results), "targets": len(results), "failures": len(failures),
            "known_defects": {r.name: r.known for r in results if r.known},
            "slowest_input_s": max((r.slowest_s for r in results), default=0.0),
            "rss_growth_mb_max": max((r.rss_growth_mb for r in results), default=0.0),
            "per_target": {r.name: {"inputs": r.inputs, "slowest_s": r.slowest_s, "rss_growth_mb": r.rss_growth_mb,
                                    **({"failure": r.failure} if r.failure else {})} for r in results},
            **agent_rss, "seconds": round(time.monotonic() - t0, 1)}


if __name__ == "__main__":
    import sys

    print(json.dumps(run_fuzz(int(sys.argv[1]) if len(sys.argv) > 1 else 2000), indent=1))

