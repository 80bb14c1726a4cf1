"""Who an agent is and what it is told: one identity per instance, typed settings, models by name, no secrets out."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from edge_console.agent.config import ConfigError, build_config
from edge_console.agent.pipeline.sources import SourceSpec, redact_url
from tests.support.agent_harness import Agent, agent_cli


@pytest.mark.parametrize("toml,message", [
    ('port = "8470"', 'port = \'8470\' must be a whole number (e.g. port = 8470)'),
    ('threads = "2"', "threads = '2' must be a whole number (e.g. threads = 2)"),
    ("fps = true", "fps = True must be a number"),
    ("advertise = 1", "advertise = 1 must be true or false"),
    ('interfaces = [1, 2]', 'interfaces = [1, 2] must be a list of text (e.g. interfaces = ["192.168.1.5"])'),
    ("name = 7", "name = 7 must be text"),
])
def test_config_values_of_the_wrong_type_are_named(tmp_path, toml, message):
    path = tmp_path / "agent.toml"
    path.write_text('model = "parts-v2"\n' + toml + "\n")
    with pytest.raises(ConfigError) as err:
        build_config(path, {})
    assert str(err.value) == f"config file {path}: {message}"


def test_a_float_setting_takes_a_whole_number(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('model = "parts-v2"\nfps = 10\n')
    assert build_config(path, {}).fps == 10


@pytest.mark.parametrize("url,shown", [
    ("rtsp://user:p@ss@10.0.0.5/stream1", "rtsp://10.0.0.5/stream1 (credentials hidden)"),
    ("rtsp://admin:pa:ss@10.0.0.5:554/live", "rtsp://10.0.0.5:554/live (credentials hidden)"),
    ("rtsp://admin:p%40ss@cam.local/live", "rtsp://cam.local/live (credentials hidden)"),
    ("rtsp://10.0.0.5/live?user=admin&password=secret", "rtsp://10.0.0.5/live (credentials hidden)"),
    ("http://cam.local/mjpg?token=a@b", "http://cam.local/mjpg (credentials hidden)"),
    ("rtsp://[fe80::1]:554/s", "rtsp://[fe80::1]:554/s"),
])
def test_camera_urls_are_published_without_anything_secret(url, shown):
    assert redact_url(url) == shown
    for secret in ("p@ss", "pa:ss", "p%40ss", "secret", "a@b", "admin"):
        assert secret not in redact_url(url)


def test_a_video_file_is_published_by_its_name_only():
    assert SourceSpec("/srv/plant/line 3/cam.mp4").describe()["description"] == "video file cam.mp4 (looped)"


def _info(agent: Agent) -> dict:
    with urllib.request.urlopen(agent.url + "/v1/info", timeout=10) as r:
        return json.load(r)


def test_two_instances_on_one_host_have_their_own_identity_and_history(parts_v2, tmp_path, monkeypatch):
    # Both agents use the default state location (the state root), told apart only by --instance.
    monkeypatch.setenv("EDGE_AGENT_STATE_ROOT", str(tmp_path / "state"))
    common = ["run", "--model", "parts-v2", "--port", "0", "--interface", "127.0.0.1", "--threads", "1",
              "--no-advertise", "--insecure-lab-mode"]  # identity of instances is tested here; trust elsewhere
    left = Agent.from_args([*common, "--instance", "left", "--name", "Gate cam left"], tmp_path / "left-logs").start()
    right = Agent.from_args([*common, "--instance", "right", "--name", "Gate cam right"],
                            tmp_path / "right-logs").start()
    try:
        ids = {_info(left)["id"], _info(right)["id"]}
        assert len(ids) == 2, "two agents on one host must not share a device id"
        assert (tmp_path / "state" / "left" / "telemetry.sqlite3").exists()
        assert (tmp_path / "state" / "right" / "telemetry.sqlite3").exists()
        # A third agent on an instance that is already running refuses to start instead of merging with it.
        clash = agent_cli(*common, "--instance", "left")
        assert clash.returncode == 2 and "is in use by another agent" in clash.stderr
        assert "--instance" in clash.stderr and "Traceback" not in clash.stderr
    finally:
        left.stop()
        right.stop()
    restarted = Agent.from_args([*common, "--instance", "left"], tmp_path / "restarted-logs").start()
    try:
        assert _info(restarted)["id"] in ids  # the same instance keeps its identity across restarts
    finally:
        restarted.stop()


def test_model_names_come_from_the_library(tmp_path):
    r = agent_cli("run", "--model", "parts-v9", "--port", "0", "--interface", "127.0.0.1", "--no-advertise",
                  "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no model called 'parts-v9'" in r.stderr
    assert "parts-v1" in r.stderr and "parts-v2" in r.stderr  # it lists what there is


def test_a_port_in_use_and_a_foreign_interface_name_the_flag_to_change(parts_v2, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = agent_cli("run", "--model", str(parts_v2), "--port", str(port), "--interface", "127.0.0.1",
                      "--state-dir", str(tmp_path / "a"), "--no-advertise")
    assert r.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in r.stderr and "--port" in r.stderr
    # 192.0.2.1 (TEST-NET-1) is never an address of this host: binding fails locally, no packet is sent.
    r = agent_cli("run", "--model", str(parts_v2), "--port", "0", "--interface", "192.0.2.1", "--no-advertise",
                  "--state-dir", str(tmp_path / "b"))
    assert r.returncode == 2 and "cannot listen on 192.0.2.1" in r.stderr and "--interface" in r.stderr
