"""What `edge-bundle` tells a person: build's progress over the golden frames, and verify's verdict in a few lines
(`--json` prints the whole result instead, for scripts).

A progress line is rewritten in place (a carriage return) only on a terminal; in a log or a pipe each frame is a
line of its own, so the log never holds "golden frame 1/6golden frame 2/6...".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from tuf.api.metadata import Metadata, Targets, Timestamp

from edge_console.core.terminal_text import for_terminal


def golden_progress(out: TextIO) -> Callable[[int, int, str], None]:
    """A `build_bundle` progress callback writing to `out`."""
    interactive = out.isatty()

    def show(done: int, total: int, name: str) -> None:
        text = f"golden frame {done}/{total}: {for_terminal(name)}"
        if interactive:
            end = "\n" if done == total else ""
            print(f"\r{text}\x1b[K", end=end, file=out, flush=True)  # \x1b[K: clear what a longer name left
        else:
            print(text, file=out, flush=True)

    return show


def earliest_expiry(trust_dir: Path) -> str:
    """The earliest expiry (ISO, UTC) among the targets and timestamp metadata TUF accepted into `trust_dir`."""
    dates = []
    for name, kind in (("targets.json", Targets), ("timestamp.json", Timestamp)):
        path = trust_dir / name
        if path.exists():
            dates.append(Metadata[kind].from_bytes(path.read_bytes()).signed.expires)
    return min(dates).isoformat() if dates else ""


def _listed(values: object) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) and values else "any"


def verify_summary(result: dict) -> str:
    """`edge-bundle verify`'s result as a person reads it: what the release is, the verdict and why, what a
    device needs to take it, and the golden-set check when it ran."""
    m = result["manifest"]
    model = m.get("model") or {}
    classes = ", ".join(str(c) for c in model.get("classes") or []) or "?"
    budget = m.get("latency_budget_p95_ms")
    expires = str(result.get("expires") or "")
    lines = [
        f"{result['release']}: release {m.get('model_line')} {m.get('version')} (model {model.get('name', '?')} "
        f"{model.get('model_version', '')}; classes {classes})",
        f"Verdict: VERIFIED as a device verifies it: signatures under root version {result.get('root_version', '?')}, "
        "expiry, every hash",
        f"Expires: {expires.replace('T', ' ')[:16] + ' UTC' if expires else '?'} (a device refuses it after that)",
        f"Compatibility: architectures {_listed(m.get('architectures'))} · agent >= "
        f"{m.get('min_agent_version', '0')} · providers {_listed(m.get('required_providers'))} · latency budget "
        + (f"p95 <= {budget} ms" if budget else "none"),
        f"Golden set: {m.get('golden')} frames; a device must reach F1 >= {m.get('min_f1')} at IoU {m.get('iou')}",
    ]
    golden = result.get("golden")
    if golden is None:
        lines.append("Golden check on this machine: not run (add --check)")
    elif golden.get("passed"):
        lines.append(f"Golden check on this machine: PASSED, F1 {golden['f1']:.3f} (precision "
                     f"{golden['precision']:.3f}, recall {golden['recall']:.3f}), p95 {golden['latency_p95_ms']} ms")
    else:
        lines.append(f"Golden check on this machine: FAILED: {'; '.join(golden.get('reasons') or ['?'])}")
    lines.append(f"Bundle sha256 {result['sha256']}  (--json prints all of it)")
    return for_terminal("\n".join(lines), keep_newlines=True)
