"""`edge-console --demo` gives a new user something to push in the first minute: the demo tour plays it (the demo
fleet, its parts 2.0.0 release, a push to the device on parts-v1, its probation, a rollback) in its own process,
so the demo's application settings stay out of this one, and fails unless the device itself ran the release and
then returned to parts-v1."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.agent_harness import ROOT


def test_the_demo_lets_a_new_user_push_watch_probation_and_roll_back():
    tour = subprocess.run([sys.executable, "-m", "edge_console.console.releases_ui.demo_tour"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert tour.returncode == 0, tour.stdout[-3000:] + tour.stderr[-3000:]
    said = tour.stdout
    for step in ("parts 2.0.0 is in the library, verified: True", "Packing line 2 runs parts 1.0.0",
                 "Packing line 2 switched to parts 2.0.0: on probation", "offered: Undo rollout",
                 "rolled back: Packing line 2 runs parts 1.0.0"):
        assert step in said, said
