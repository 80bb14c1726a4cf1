"""Generated hostile input for every parser that reads the network or files (hypothesis), short version: a few
hundred inputs per parser. Known defects (each pinned by an xfail case in test_defects.py) are counted apart;
anything else is a failure. (`make field-trial` runs more than 100,000 inputs.)"""

from __future__ import annotations

import pytest

from .fuzz import WEIGHTS, run_fuzz

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("target", sorted(WEIGHTS))
def test_a_parser_only_raises_what_it_promises(target):
    budget = 600 if target == "http_api" else 200
    result = run_fuzz(budget, rng_seed=14, only=(target,))
    stats = result["per_target"][target]
    assert not stats.get("failure"), stats["failure"]
    assert stats["inputs"] >= min(budget, 100)
    assert stats["slowest_s"] < 5.0
