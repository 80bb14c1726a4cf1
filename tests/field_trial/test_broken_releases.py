"""The broken-release corpus, short version (every category, a sample of the large ones): each case is refused by
a device's own update path and leaves its model store byte for byte as it was; the intact release is accepted.
The console's release library is given the same cases: it never crashes and never calls a broken bundle verified.
(`make field-trial` runs the whole corpus.)"""

from __future__ import annotations

import pytest

from .corpus import run_console_corpus, run_corpus

pytestmark = pytest.mark.timeout(300)


def test_every_broken_release_is_refused_before_the_model_store_is_touched():
    result = run_corpus("short", seed=14)
    assert result["cases"] >= 50 and len(result["by_category"]) >= 14, result
    assert result["wrongly_accepted"] == 0, result.get("wrong")
    assert result["rejected"] == result["cases"]
    assert result["store_untouched"] and result["nothing_written_outside"], result
    assert result["control_accepted"]


def test_the_console_library_refuses_the_same_cases_without_crashing():
    result = run_console_corpus("short", seed=14)
    assert result["wrongly_verified"] == 0, result
    assert result["crashes"] == 0, result  # D5 (test_defects_console.py) was the last cause
