"""The field trial's mDNS faults alone, on the plan's site: discovery over real multicast (goodbyes, returns, kill -9)
and multicast blocked at the switch. For rerunning them many times without the rest of the trial:

    python -m tests.field_trial.trial --long --only mdns [--seed N]

The faults get the same seeds and devices as in the whole trial (the first two seeds of `run_site`'s draw, the
"stream" pool), so a failure of `make field-trial` can be rerun here as it happened.
"""

from __future__ import annotations

import random
import time

from . import faults
from .netns import clean_leftovers, host_network_snapshot
from .site import FieldSite
from .trial import Plan, Report, missing_tools, pools


def run_mdns_site(plan: Plan, seed: int, report: Report, log=print) -> None:
    rng = random.Random(seed)
    seeds = {name: rng.randrange(2**32) for name in ("discovery", "multicast")}  # as run_site draws them
    before = host_network_snapshot()
    missing = missing_tools()
    report.site["missing_tools"] = missing
    devices = plan.devices
    skewed = {} if "faketime" in missing else {devices - 2: "+6h", devices - 1: "-6h"}
    site = FieldSite.open(devices=devices, skewed=skewed, small_disk={devices - 3: 110})
    try:
        report.site.update(site.figures)
        report.site["namespaces"] = len(site.net.namespaces())
        runs = [lambda: faults.discovery(site, random.Random(seeds["discovery"]), plan.trials["discovery"],
                                         pool=pools(site)["stream"])]
        if "nft" not in missing:
            runs.append(lambda: faults.multicast_blocked(site, random.Random(seeds["multicast"]),
                                                         plan.trials["multicast_blocked"]))
        for run in runs:
            t0 = time.monotonic()
            result = run()
            report.faults[result.name] = result
            log(f"  {result.name}: {result.survived}/{result.trials} survived ({time.monotonic() - t0:.0f} s)"
                + (f" - {result.failures[:2]}" if result.failures else ""))
    finally:
        site.close()
    report.site["host_network_unchanged"] = host_network_snapshot() == before
    report.site["left_behind"] = clean_leftovers() + [ns for ns in site.net.namespaces()]
