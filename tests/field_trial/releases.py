"""The trial's release authority (the offline signing machine) and the releases it signs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.build import build_bundle
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model

GOLDEN = 8


@dataclass
class ReleaseKit:
    folder: Path
    authority: ReleaseAuthority
    golden: Path
    root_json: Path
    bundles: dict[str, Path] = field(default_factory=dict)  # version -> bundle
    releases: dict[str, Path] = field(default_factory=dict)  # version -> signed release file

    @classmethod
    def create(cls, folder: Path, golden: int = GOLDEN) -> ReleaseKit:
        folder.mkdir(parents=True, exist_ok=True)
        authority = ReleaseAuthority.create(folder / "authority")
        root = folder / "root.json"
        root.write_bytes(authority.root_json())
        return cls(folder, authority, golden_frames(folder / "golden", count=golden), root)

    def bundle(self, version: str, model: str = "parts-v2", line: str = "parts", **options) -> Path:
        key = f"{line}:{version}:{model}"
        if key not in self.bundles:
            self.bundles[key] = build_bundle(demo_model(model), line, version, self.golden,
                                             self.folder / f"{line}-{version}-{model}.edgebundle", **options)
        return self.bundles[key]

    def sign(self, version: str, model: str = "parts-v2", line: str = "parts", **options) -> Path:
        """A release file, signed now. Two signings in the same second would share their snapshot/timestamp
        version (they are the signing time in seconds): wait for the next second first."""
        _next_second()
        release = self.authority.sign(self.bundle(version, model, line, **options),
                                      self.folder / f"{line}-{version}-{model}-{time.time_ns()}.edgerelease")
        self.releases[f"{line}:{version}"] = release
        return release


_last_signing = [0]


def _next_second() -> None:
    while int(time.time()) <= _last_signing[0]:
        time.sleep(0.05)
    _last_signing[0] = int(time.time())
