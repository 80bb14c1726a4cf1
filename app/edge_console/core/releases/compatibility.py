"""Whether a release can run on a device: the one rule, judged by the device before it installs anything
(agent/updates/_service.py) and by the console before it sends anything (client/releases/eligibility.py), so the
two never disagree on what a push would meet.

A release's manifest names the architectures it was built for, the oldest agent that can run it and the execution
providers it needs. The device knows all its own facts; a console knows what the device last reported, and a fact
it does not know (an empty one) does not stand in the way: the device decides with all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge_console.core.versions import version_key


def compatibility_problem(architectures: Sequence[str], min_agent_version: str, required_providers: Sequence[str],
                          *, arch: str, agent_version: str, providers: Sequence[str]) -> str | None:
    """None when a release with these needs can run on a device with these facts; else why not, in words."""
    if architectures and arch and arch not in architectures:
        return f"built for {', '.join(architectures)}; the device is {arch}"
    needed = min_agent_version or "0"
    if agent_version and version_key(agent_version) < version_key(needed):
        return f"needs agent {needed} or newer; the device runs {agent_version}"
    missing = [p for p in required_providers if providers and p not in providers]
    if missing:
        return f"needs execution provider(s) {', '.join(missing)}; the device has {', '.join(providers)}"
    return None
