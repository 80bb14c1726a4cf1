"""The field trial: a simulated site (netns, bridge, real multicast), the scripted faults, a rollout under faults,
the broken-release corpus and the parser fuzzing, reported as one JSON line (the last line printed).

    python -m tests.field_trial.trial --long [--seed N]       # `make field-trial` (minutes; root)
    python -m tests.field_trial.trial --short                 # the few-trials version the test suite runs
    python -m tests.field_trial.trial --long --only mdns      # the mDNS faults alone (mdns_trial.py)

Only the parts that need no network (corpus, fuzzing) run when the machine cannot host the site (not root): the
JSON then says why the site was skipped.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import faults
from .delivery import ReleaseQueue
from .netns import SiteUnavailable, clean_leftovers, host_network_snapshot, unavailable_reason
from .results import FaultResult, p50_p95
from .rollout_trial import rollout_under_faults
from .site import FieldSite


@dataclass(frozen=True)
class Plan:
    mode: str
    devices: int
    trials: dict[str, int]
    kill_steps_trials: int
    corpus: str  # "short" or "long"
    fuzz_inputs: int
    rollouts: tuple[str, ...] = ("3.0.0",)
    qt_console: bool = False
    patch_releases: int = 0
    resume_timeout: float = 45.0  # how long a cut upload may take to finish once the link is back
    follow_timeout: float = 40.0  # how long the console waits for a device's verdict after its disk filled
    rollout_batch: int = 3  # after the canary; the short run's 5 makes one stage fewer (CI's time)


SHORT = Plan("short", 10, {"discovery": 1, "multicast_blocked": 3, "not_an_agent": 1, "link_flap_streaming": 1,
                           "link_flap_upload": 1, "connection_reset_upload": 1, "link_flap_activation": 1,
                           "disk_full": 1, "clock_skew": 1, "greedy_console": 1,
                           "hostile_clients": 1}, kill_steps_trials=1, corpus="short", fuzz_inputs=3000,
             patch_releases=16, resume_timeout=10.0, follow_timeout=8.0, rollout_batch=5)
LONG = Plan("long", 12, {"discovery": 5, "multicast_blocked": 12, "not_an_agent": 3, "link_flap_streaming": 12,
                         "link_flap_upload": 8, "connection_reset_upload": 6, "link_flap_activation": 6,
                         "disk_full": 3, "clock_skew": 3, "greedy_console": 3,
                         "hostile_clients": 3}, kill_steps_trials=4, corpus="long", fuzz_inputs=120_000,
            rollouts=("3.0.0", "4.0.0"), qt_console=True, patch_releases=60)


@dataclass
class Report:
    plan: Plan
    seed: int
    faults: dict[str, FaultResult] = field(default_factory=dict)
    rollouts: list[dict] = field(default_factory=list)
    corpus: dict = field(default_factory=dict)
    fuzz: dict = field(default_factory=dict)
    site: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict:
        faults_d = {name: r.to_dict() for name, r in self.faults.items()}
        resume = [t for r in self.faults.values() for k, v in r.times.items() for t in v
                  if k in ("upload_resume_s", "upload_resume_after_restart_s", "follow_resume_s")]
        reconnect = [t for r in self.faults.values() for k, v in r.times.items() for t in v if k == "stream_resume_s"]
        trials = sum(r.trials for r in self.faults.values())
        return {
            "field_trial": self.plan.mode, "seed": self.seed, "devices": self.plan.devices,
            "trials": trials, "survived": sum(r.survived for r in self.faults.values()),
            "known_defect_trials": {k: sum(r.known.get(k, 0) for r in self.faults.values())
                                    for k in sorted({k for r in self.faults.values() for k in r.known})},
            "models_lost": sum(r.models_lost for r in self.faults.values()),
            "releases_wrongly_accepted": self.corpus.get("wrongly_accepted"),
            "reconnect_s": p50_p95(reconnect), "resume_s": p50_p95(resume),
            "rollout": self.rollouts[0] if len(self.rollouts) == 1 else self.rollouts,
            "faults": {name: {k: v for k, v in d.items()} for name, d in faults_d.items()},
            "corpus": self.corpus, "fuzz": self.fuzz, "site": self.site, **self.extra,
            "wall_s": round(time.monotonic() - self.started, 1),
        }


def missing_tools() -> list[str]:
    """What the machine lacks for some faults (apt-get install nftables faketime); those faults are skipped."""
    from .devices import FAKETIME_LIB
    from .netns import have_nft

    return [name for name, ok in (("nft", have_nft()), ("faketime", FAKETIME_LIB is not None)) if not ok]


def pools(site: FieldSite) -> dict[str, list]:
    """Disjoint devices for the faults that run at the same time (each touches only its own devices)."""
    general = faults.general(site)
    n = len(general)
    cut = [0, 2, 3 if n < 9 else 4, 4 if n < 9 else 5, n]
    names = ["stream", "upload", "activation", "kill"]
    return {name: general[cut[i]:cut[i + 1]] for i, name in enumerate(names)}


def run_site(plan: Plan, seed: int, report: Report, log=print, site_holder: list | None = None) -> None:
    """The site, its faults and its rollouts; figures go into `report`."""
    rng = random.Random(seed)
    before = host_network_snapshot()
    devices = plan.devices
    missing = missing_tools()
    report.site["missing_tools"] = missing
    skewed = {} if "faketime" in missing else {devices - 2: "+6h", devices - 1: "-6h"}
    site = FieldSite.open(devices=devices, skewed=skewed, small_disk={devices - 3: 110})
    if site_holder is not None:
        site_holder.append(site)
    try:
        report.site.update(site.figures)
        report.site["namespaces"] = len(site.net.namespaces())
        queue = ReleaseQueue(site.kit, plan.patch_releases, plan.rollouts)
        groups = pools(site)
        seeds = {name: rng.randrange(2**32) for name in ("discovery", "multicast", "rogue", "stream", "upload",
                                                          "reset", "activation", "kill", "disk", "clock", "rollout",
                                                          "greedy", "hostile")}
        r = {k: random.Random(v) for k, v in seeds.items()}
        t = plan.trials

        def record(*results: FaultResult, t0: float) -> None:
            for result in results:
                report.faults[result.name] = result
                log(f"  {result.name}: {result.survived}/{result.trials} survived ({time.monotonic() - t0:.0f} s)"
                    + (f" - {result.failures[:2]}" if result.failures else ""))

        # 1. the whole site at once: discovery over multicast, multicast blocked
        t0 = time.monotonic()
        record(faults.discovery(site, r["discovery"], t["discovery"], pool=groups["stream"]), t0=t0)
        if "nft" not in missing:
            record(faults.multicast_blocked(site, r["multicast"], t["multicast_blocked"]), t0=t0)
        # 2. faults on devices of their own, at the same time; and the host that is not an agent, which touches no
        # device (it only claims one's id) and needs no multicast of theirs
        t0 = time.monotonic()
        jobs = {
            "rogue": lambda: faults.not_an_agent(site, r["rogue"], t["not_an_agent"], queue),
            "stream": lambda: faults.link_flap_streaming(site, r["stream"], t["link_flap_streaming"],
                                                         pool=groups["stream"]),
            "upload": lambda: (faults.link_flap_upload(site, r["upload"], t["link_flap_upload"], queue,
                                                       pool=groups["upload"], resume_timeout=plan.resume_timeout),
                               faults.connection_reset_upload(site, r["reset"], t["connection_reset_upload"], queue,
                                                              pool=groups["upload"],
                                                              resume_timeout=plan.resume_timeout)),
            "clock": lambda: faults.clock_skew(site, r["clock"], t["clock_skew"], queue),
            "activation": lambda: faults.link_flap_activation(site, r["activation"], t["link_flap_activation"],
                                                              queue, pool=groups["activation"]),
            "kill": lambda: faults.kill_9_at_steps(site, r["kill"], plan.kill_steps_trials, queue,
                                                   pool=groups["kill"]),
            "disk": lambda: faults.disk_full(site, r["disk"], t["disk_full"], queue,
                                             follow_timeout=plan.follow_timeout),
        }
        if "nft" in missing:  # the upload faults need nft's rate limit and resets
            del jobs["upload"]
        if "faketime" in missing:
            del jobs["clock"]
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="fault") as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            for _name, future in futures.items():
                out = future.result()
                record(*(out if isinstance(out, tuple) else (out,)), t0=t0)
        # A console that takes every socket it can, alone: the devices it picks are busy with nothing else.
        t0 = time.monotonic()
        record(faults.greedy_console(site, r["greedy"], t.get("greedy_console", 1)), t0=t0)
        # The rogue host as a hostile client (bodies that never arrive, half-open handshakes) of one device, alone.
        t0 = time.monotonic()
        record(faults.hostile_clients(site, r["hostile"], t.get("hostile_clients", 1), pool=groups["stream"]), t0=t0)
        # 3. whole rollouts while links flap and agents are killed
        for version in plan.rollouts:
            t0 = time.monotonic()
            result, outcome = rollout_under_faults(site, r["rollout"], queue.rollout(version), version,
                                                   batch=plan.rollout_batch)
            merged = report.faults.setdefault(result.name, FaultResult(result.name, result.mechanism))
            merged.trials += result.trials
            merged.survived += result.survived
            merged.models_lost += result.models_lost
            merged.failures += result.failures
            report.rollouts.append(outcome)
            log(f"  rollout {version}: {outcome.get('status')} {outcome.get('first_pass')} -> "
                f"{outcome.get('on_release_at_end')}/{devices} on it, audit chains ok: "
                f"{outcome.get('audit_chains_ok')} ({time.monotonic() - t0:.0f} s)")
        if plan.qt_console:
            from .qt_drive import drive_qt_console

            report.extra["qt_console"] = drive_qt_console(site)
    finally:
        site.close()
    report.site["host_network_unchanged"] = host_network_snapshot() == before
    report.site["left_behind"] = clean_leftovers() + [ns for ns in site.net.namespaces()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="field-trial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--long", action="store_true", help="the full trial (minutes)")
    mode.add_argument("--short", action="store_true", help="a few trials of each (the test suite's version)")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--skip", action="append", default=[], choices=("site", "corpus", "fuzz"))
    parser.add_argument("--only", choices=("mdns",), help="only the site's mDNS faults (discovery, multicast "
                                                         "blocked): no other fault, rollout, corpus or fuzzing")
    args = parser.parse_args(argv)
    if args.only:
        args.skip += ["corpus", "fuzz"]
    plan = LONG if args.long else SHORT
    report = Report(plan, args.seed)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    log(f"field trial ({plan.mode}, seed {args.seed})")
    try:
        if "site" not in args.skip:
            if reason := unavailable_reason():
                report.site["skipped"] = reason
                log(f"  site skipped: {reason}")
            else:
                try:
                    if args.only == "mdns":
                        from .mdns_trial import run_mdns_site

                        run_mdns_site(plan, args.seed, report, log)
                    else:
                        run_site(plan, args.seed, report, log)
                except SiteUnavailable as exc:
                    report.site["skipped"] = str(exc)
        if "corpus" not in args.skip:
            from .corpus import run_corpus

            t0 = time.monotonic()
            report.corpus = run_corpus(plan.corpus, args.seed)
            from .corpus import run_console_corpus

            report.corpus["console_library"] = run_console_corpus(plan.corpus, args.seed)
            log(f"  corpus: {report.corpus['rejected']}/{report.corpus['cases']} rejected, "
                f"{report.corpus['wrongly_accepted']} wrongly accepted in {time.monotonic() - t0:.0f} s")
        if "fuzz" not in args.skip:
            from .fuzz import run_fuzz

            t0 = time.monotonic()
            report.fuzz = run_fuzz(plan.fuzz_inputs, args.seed)
            log(f"  fuzz: {report.fuzz['inputs']} inputs, {report.fuzz['failures']} failures in "
                f"{time.monotonic() - t0:.0f} s")
    finally:
        report.extra["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        figures = report.to_dict()
        print(json.dumps(figures, separators=(",", ":")), flush=True)
    if report.site.get("skipped"):
        log(f"field trial: the simulated site did not run ({report.site['skipped']}); run it as root")
        return 3
    ok = figures["models_lost"] == 0 and not figures["releases_wrongly_accepted"] and \
        figures["survived"] + sum(figures["known_defect_trials"].values()) == figures["trials"] and \
        not figures.get("fuzz", {}).get("failures")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
