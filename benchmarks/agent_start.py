"""The benchmarks' agents: real `edge-agent run` processes on 127.0.0.1, started through the one test harness
(tests/support/agent_harness.py) with the exact command line the published figures were measured with.

The harness's own `Agent(...)` builds a slightly different command line (its flags in another order, its fps
written with %g) and enrols a console of its own; a benchmark keeps its baseline's arguments, so it hands them
over whole (`Agent.from_args`) and prepares the state folder itself (tls_setup.enrol_console, a release root).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.agent_harness import LOOPBACK, Agent


def agent_run_args(model: Path, state_dir: Path, *extra: str, secure: bool) -> list[str]:
    """`edge-agent run` on 127.0.0.1, one inference thread, any free port; `secure=False` adds
    `--insecure-lab-mode` (plain HTTP, no pairing), for the figures without TLS."""
    lab = [] if secure else ["--insecure-lab-mode"]
    return ["run", "--model", str(model), "--state-dir", str(state_dir), "--port", "0", "--interface", LOOPBACK,
            "--name", "Test camera", "--threads", "1", *lab, *extra]


def start_agent(model: Path, state_dir: Path, *extra: str, secure: bool) -> Agent:
    """The agent, once it listens. Its logs go beside `state_dir` (so inside the benchmark's temporary folder when
    `state_dir` is in one); a failed start raises with the end of its log."""
    log_dir = state_dir.with_name(f"{state_dir.name}-logs")
    return Agent.from_args(agent_run_args(model, state_dir, *extra, secure=secure), log_dir).start()
