from pathlib import Path

import pytest

from edge_console.agent.config import ConfigError, build_config


def test_flags_win_over_the_file_and_the_file_over_defaults(tmp_path):
    f = tmp_path / "agent.toml"
    f.write_text('[agent]\nmodel = "models/parts-v2.onnx"\nname = "Line 7"\nport = 9000\ninterfaces = "127.0.0.1"\n')
    cfg = build_config(f, {"port": 9100, "name": None})
    assert (cfg.model, cfg.name, cfg.port, cfg.interfaces, cfg.fps) == ("models/parts-v2.onnx", "Line 7", 9100,
                                                                        ["127.0.0.1"], 15.0)


@pytest.mark.parametrize("overrides,message", [
    ({"model": "m.onnx", "port": 70000}, "port 70000 is out of range"),
    ({"model": "m.onnx", "fps": 0}, "fps 0 must be between"),
    ({"model": "m.onnx", "width": 8}, "too small"),
])
def test_bad_values_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(None, overrides)


def test_defaults_name_the_host():
    cfg = build_config(None, {"model": str(Path("m.onnx"))})
    assert cfg.name and cfg.interfaces == [] and cfg.advertise is True
