"""For the tests that install the product as a site does (tests/installers): an environment in which only the kit
can serve a wheel, and the Python a fresh virtual environment is made from."""

from __future__ import annotations

import os
import sys


def clean_env(**extra: str) -> dict:
    """The environment for an install: no pip settings of this machine (its find-links, extra indexes) and an
    index that cannot answer (a closed port on loopback), so only the kit can serve a wheel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="http://127.0.0.1:9/simple/", PIP_FIND_LINKS="")
    env.update(extra)
    return env


def base_python() -> str:
    """The interpreter this test run's virtual environment was made from (`--user` and new venvs need it)."""
    return getattr(sys, "_base_executable", sys.executable)
