"""Agent settings: defaults, then a TOML file, then command-line flags (flags win).

Every value is checked against the type its field declares, so `port = "8470"` in a config file is an error that
names the key and the type, not a comparison error deep inside the agent or a string handed to onnxruntime.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from edge_console.agent.identity import default_state_root

INSTANCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(Exception):
    pass


@dataclass
class AgentConfig:
    model: str = ""  # a path to an .onnx file, or a model name from the library (shipped models + model_dirs)
    model_dirs: list[str] = field(default_factory=list)  # extra folders of models to look names up in
    source: str = "synthetic"
    name: str = ""
    # Several agents on one host (a gateway with two cameras) each need their own identity and history: one
    # instance name each; the state folder is <state root>/<instance> unless state_dir says otherwise.
    instance: str = "default"
    port: int = 8470
    interfaces: list[str] = field(default_factory=list)  # empty: listen on and advertise every interface
    # Names and addresses consoles may reach this device by besides its own (a NAT or a container's published
    # port): the Host header must name one of them, its own .local name, or the address a request arrived on.
    allowed_hosts: list[str] = field(default_factory=list)
    state_dir: str = ""
    fps: float = 15.0  # synthetic and file sources
    width: int = 640  # synthetic source
    height: int = 480
    seed: int = 0  # synthetic scene
    provider: str | None = None  # force an onnxruntime execution provider, e.g. "cpu", "cuda"
    threads: int | None = None  # onnxruntime intra-op threads
    injected_delay_ms: float = 0.0  # the simulator's slower hardware
    advertise: bool = True
    parent_pid: int | None = None  # exit when this process is gone (the simulator's children)
    probation_s: float = 60.0  # after a new model is switched on, how long the watchdog may roll it back
    # Plain HTTP with every route open to everyone: bench setups and scripted probes only, never a real device.
    insecure_lab_mode: bool = False

    def validate(self, check_model: bool = True) -> AgentConfig:
        if check_model and not self.model:
            raise ConfigError("no model given: pass --model NAME or PATH (e.g. parts-v2, or a .onnx file) or set "
                              "model in the config file")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range 0-65535 (0 picks a free port)")
        if not 0 < self.fps <= 240:
            raise ConfigError(f"fps {self.fps} must be between 0 and 240")
        if self.width < 32 or self.height < 32:
            raise ConfigError(f"synthetic size {self.width}x{self.height} is too small (at least 32x32)")
        if not 1 <= self.probation_s <= 24 * 3600:
            raise ConfigError(f"probation_s {self.probation_s} must be between 1 s and a day")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads {self.threads} must be 1 or more (leave it unset to let onnxruntime choose)")
        if not INSTANCE_PATTERN.match(self.instance):
            raise ConfigError(f"instance {self.instance!r} must be 1-64 letters, digits, '.', '_' or '-' "
                              "(it names the agent's state folder)")
        if not self.state_dir:
            self.state_dir = str(default_state_root() / self.instance)
        if not self.name:
            import socket

            self.name = socket.gethostname() + ("" if self.instance == "default" else f" {self.instance}")
        return self


_HINTS = typing.get_type_hints(AgentConfig)
_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _describe(expected) -> str:
    if typing.get_origin(expected) is list:
        return "a list of text"
    args = [a for a in typing.get_args(expected) if a is not type(None)]
    if args:
        return _TYPE_WORDS.get(args[0], str(args[0]))
    return _TYPE_WORDS.get(expected, str(expected))


def _fits(value, expected) -> bool:
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if typing.get_origin(expected) is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def check_types(values: dict, origin: str) -> None:
    """ConfigError naming the first key whose value is not of its field's type."""
    for key, value in values.items():
        expected = _HINTS[key]
        if not _fits(value, expected):
            example = {"port": "port = 8470", "threads": "threads = 2", "interfaces": 'interfaces = ["192.168.1.5"]'}
            hint = f" (e.g. {example[key]})" if key in example else ""
            raise ConfigError(f"{origin}: {key} = {value!r} must be {_describe(expected)}{hint}")


def load_toml(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("agent", data)  # either top-level keys or an [agent] table
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [agent] must be a table of settings")
    known = {f.name for f in fields(AgentConfig)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key in ("interfaces", "model_dirs", "allowed_hosts"):
        if isinstance(section.get(key), str):
            section[key] = [section[key]]
    check_types(section, f"config file {path}")
    return section


def build_config(file_path: Path | None, overrides: dict, validate_model: bool = True) -> AgentConfig:
    """Defaults < TOML file < command-line flags; `overrides` holds only the flags the user gave."""
    values = load_toml(file_path) if file_path else {}
    flags = {k: v for k, v in overrides.items() if v is not None}
    check_types(flags, "command line")
    values.update(flags)
    return AgentConfig(**values).validate(check_model=validate_model)
