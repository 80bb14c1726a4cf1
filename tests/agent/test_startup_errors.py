"""A model that cannot be used stops `edge-agent run` at once with a clear message; bad config too."""

from __future__ import annotations

import pytest

from tests.support.agent_harness import agent_cli


@pytest.mark.parametrize("content,expected", [
    (None, "model file not found"),
    (b"garbage", "is not an ONNX model"),
])
def test_bad_model_exits_with_a_clear_error(tmp_path, content, expected):
    model = tmp_path / "m.onnx"
    if content is not None:
        model.write_bytes(content)
    r = agent_cli("run", "--model", str(model), "--port", "0", "--interface", "127.0.0.1",
                  "--state-dir", str(tmp_path / "s"), "--no-advertise")
    assert r.returncode == 2
    assert r.stderr.startswith("edge-agent: error:") and expected in r.stderr and "Traceback" not in r.stderr


def test_missing_model_flag_and_bad_config_file(tmp_path):
    r = agent_cli("run", "--port", "0", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no model given" in r.stderr
    bad = tmp_path / "agent.toml"
    bad.write_text("model = 'x.onnx'\ncolour = 'red'\n")
    r = agent_cli("run", "--config", str(bad))
    assert r.returncode == 2 and "unknown setting(s) colour" in r.stderr
    bad.write_text("model = [unclosed\n")
    r = agent_cli("run", "--config", str(bad))
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    r = agent_cli("run", "--config", str(tmp_path / "absent.toml"))
    assert r.returncode == 2 and "config file not found" in r.stderr
