"""One offline kit for this machine (platform and Python), built once per test session and shared by the kit,
.deb and console-app tests.

Why `--platforms host --prefer-cache`: the full kit is about 1 GB of wheels for five platforms; the tests need
only what runs here. The wheels come from .cache/offline-kit/wheels (kept between runs, never committed) and
the versions are pinned to the ones installed in this environment, so after the first run no index is asked at
all; a fresh clone downloads about 200 MB once (seconds from PyPI).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.agent_harness import ROOT

BUILD_KIT = ROOT / "installers" / "kit" / "build_kit.py"


@pytest.fixture(scope="session")
def host_kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit")
    result = subprocess.run([sys.executable, str(BUILD_KIT), "--platforms", "host", "--prefer-cache", "--deb",
                             "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    kit = Path(result.stdout.strip().splitlines()[-1])
    assert kit.is_dir() and (kit / "KIT.json").is_file()
    return kit


@pytest.fixture(scope="session")
def kit_info(host_kit) -> dict:
    return json.loads((host_kit / "KIT.json").read_text())

