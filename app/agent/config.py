"""Agent settings: defaults, then a TOML file, then command-line flags (flags win)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from .identity import default_state_dir


class ConfigError(Exception):
    pass


@dataclass
class AgentConfig:
    model: str = ""
    source: str = "synthetic"
    name: str = ""
    port: int = 8470
    interfaces: list[str] = field(default_factory=list)  # empty: listen on and advertise every interface
    state_dir: str = field(default_factory=lambda: str(default_state_dir()))
    fps: float = 15.0  # synthetic and file sources
    width: int = 640  # synthetic source
    height: int = 480
    seed: int = 0  # synthetic scene
    provider: str | None = None  # force an onnxruntime execution provider, e.g. "cpu", "cuda"
    threads: int | None = None  # onnxruntime intra-op threads
    injected_delay_ms: float = 0.0  # the simulator's slower hardware
    advertise: bool = True
    parent_pid: int | None = None  # exit when this process is gone (the simulator's children)

    def validate(self) -> AgentConfig:
        if not self.model:
            raise ConfigError("no model given: pass --model PATH (e.g. models/parts-v2.onnx) or set model in the config file")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range 0-65535 (0 picks a free port)")
        if not 0 < self.fps <= 240:
            raise ConfigError(f"fps {self.fps} must be between 0 and 240")
        if self.width < 32 or self.height < 32:
            raise ConfigError(f"synthetic size {self.width}x{self.height} is too small (at least 32x32)")
        if not self.name:
            import socket

            self.name = socket.gethostname()
        return self


def load_toml(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("agent", data)  # either top-level keys or an [agent] table
    known = {f.name for f in fields(AgentConfig)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if isinstance(section.get("interfaces"), str):
        section["interfaces"] = [section["interfaces"]]
    return section


def build_config(file_path: Path | None, overrides: dict) -> AgentConfig:
    """Defaults < TOML file < command-line flags; `overrides` holds only the flags the user gave."""
    values = load_toml(file_path) if file_path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return AgentConfig(**values).validate()
    except TypeError as exc:
        raise ConfigError(f"bad setting: {exc}") from None
