"""Figures of a trial: per fault, how many trials, how many the product survived, and the times measured."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 3)


def p50_p95(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}


@dataclass
class FaultResult:
    name: str
    mechanism: str
    trials: int = 0
    survived: int = 0
    models_lost: int = 0
    failures: list[str] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    known: dict[str, int] = field(default_factory=dict)  # failed trials that are a known, reported defect

    def trial(self, ok: bool, why: str = "", lost: bool = False, known: str | None = None) -> bool:
        """One trial; a failure tagged `known` (a reported defect, pinned by an xfail case) is counted apart."""
        self.trials += 1
        self.survived += bool(ok)
        self.models_lost += bool(lost)
        if not ok and known:
            self.known[known] = self.known.get(known, 0) + 1
            self.notes.setdefault("known_defect_examples", []).append(why[:300])
        elif not ok:
            self.failures.append(why[:400])
        return ok

    def time(self, key: str, seconds: float | None) -> None:
        if seconds is not None:
            self.times.setdefault(key, []).append(round(seconds, 3))

    def to_dict(self) -> dict:
        return {"mechanism": self.mechanism, "trials": self.trials, "survived": self.survived,
                "models_lost": self.models_lost, **{k: p50_p95(v) for k, v in self.times.items()},
                **({"known_defect_trials": self.known} if self.known else {}),
                **({"notes": self.notes} if self.notes else {}),
                **({"failures": self.failures[:5]} if self.failures else {})}
