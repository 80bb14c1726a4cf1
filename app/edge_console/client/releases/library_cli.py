"""`edge-console release remove ID...`, and what `edge-console release trust` does once the authority is trusted:
every refused release is checked again. Headless (no Qt); `cli.py` parses the arguments and calls these.

Exit status of `remove`: 0 every release named was removed; 1 some were, some not; 2 none was (each one refused
says why: not in the library, several releases by that name, or a rollout that still needs it).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from edge_console.client.releases.library import ReleaseEntry, ReleaseImportError, held_reason, rollouts_holding
from edge_console.client.releases.rollout import RolloutStore
from edge_console.core.terminal_text import for_terminal

if TYPE_CHECKING:
    from edge_console.client.releases.cli_context import Context


def _say(text: object, error: bool = False) -> None:
    print(for_terminal(text), file=sys.stderr if error else sys.stdout)


def _match(entries: list[ReleaseEntry], wanted: str) -> list[ReleaseEntry]:
    """By id; else by label ("parts 2.0.0") or line:version, which several releases may share."""
    return [e for e in entries if e.id == wanted] or \
        [e for e in entries if wanted in (e.label, f"{e.line}:{e.version}")]


def remove_releases(ctx: Context, wanted: list[str]) -> int:
    store = RolloutStore(ctx.database)
    try:
        rollouts = store.all()
    finally:
        store.close()
    removed = refused = 0
    for name in wanted:
        matches = _match(ctx.library.entries(), name)
        if len(matches) != 1:
            refused += 1
            _say(f"edge-console: error: {len(matches)} releases are called {name!r}: remove one by its id ("
                 f"{', '.join(e.id for e in matches)})" if matches else
                 f"edge-console: error: no release {name!r} in the library; `edge-console release list`", True)
            continue
        entry = matches[0]
        holding = rollouts_holding(entry.id, rollouts)
        if holding:
            refused += 1
            _say(f"edge-console: error: {held_reason(entry, holding)}", True)
            continue
        try:
            ctx.library.remove(entry.id)
        except (ReleaseImportError, OSError) as exc:
            refused += 1
            _say(f"edge-console: error: {entry.label} was not removed: {exc}", True)
            continue
        ctx.log("release removed", release=entry.label, id=entry.id, verified=entry.verified, sha256=entry.sha256)
        removed += 1
        _say(f"Removed {entry.label} ({entry.id}) from the library: its files and its entry. The file it was "
             f"imported from is untouched: {entry.source}")
    return 0 if not refused else (1 if removed else 2)


def recheck_refused(ctx: Context) -> None:
    """Check every refused release again under the authority the console now trusts, saying how each ended."""
    refused = ctx.library.refused()
    if not refused:
        return
    _say(f"Checking the {len(refused)} refused release(s) in the library again:")
    for i, entry in enumerate(refused, 1):
        try:
            after = ctx.library.recheck(entry)
        except (ReleaseImportError, OSError) as exc:
            _say(f"  [{i}/{len(refused)}] {entry.label}: not checked again: {exc}")
            continue
        ctx.log("release checked again", release=after.label, verified=after.verified, problem=after.problem[:300],
                sha256=after.sha256)
        _say(f"  [{i}/{len(refused)}] {after.label}: " +
             ("verified" if after.verified else f"still refused: {after.problem}"))
