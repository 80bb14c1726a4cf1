"""The console's Qt-free plain parts: addresses (one parser for the console, `--add` and `edge-console compare`),
device-info checks, the telemetry ring the charts draw, and the database."""

from __future__ import annotations

import argparse
import math
import sqlite3

import numpy as np
import pytest

from edge_console.client.compare.cli import _device_address
from edge_console.client.net.addresses import DEFAULT_AGENT_PORT, DeviceAddress, parse_host_port
from edge_console.client.net.device_info import (
    ProtocolMismatch,
    check_device_info,
    check_health,
    check_telemetry_sample,
)
from edge_console.client.store import DeviceRecord, DeviceStore
from edge_console.client.telemetry_ring import TelemetryRing, break_gaps, per_second_increase
from edge_console.core.protocol import ProtocolError


@pytest.mark.parametrize(("text", "expected"), [
    ("192.168.1.20:8470", DeviceAddress("192.168.1.20", 8470)),
    (" http://cam-3.local:8470/ ", DeviceAddress("cam-3.local", 8470)),
    ("http://cam-3.local:8470/v1/info", DeviceAddress("cam-3.local", 8470)),  # a pasted URL: the address counts
    ("[fe80::1]:8470", DeviceAddress("fe80::1", 8470)),
    ("https://10.0.0.7:9000", DeviceAddress("10.0.0.7", 9000)),
])
def test_addresses_parse(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("", "host:port"), ("192.168.1.20", "no port"), ("host:99999", "not a port"), ("host:http", "not a port"),
    ("host:0", "not a port"), ("fe80::1:8470", "brackets"), ("[fe80::1]", "brackets"), ("[zz]:8470", "not an IPv6"),
    ("a b:8470", "not a host name"), (":8470", "no host"), ("rtsp://cam:554", "not a rtsp:// URL"),
    ("admin@cam:8470", "no user name"),
])
def test_bad_addresses_say_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words) as error:
        parse_host_port(text)
    assert "8080" not in str(error.value)  # examples use the agent's default port
    if "for example" in str(error.value) or "like [" in str(error.value):
        assert f":{DEFAULT_AGENT_PORT}" in str(error.value)


def test_the_compare_command_uses_the_same_parser():
    assert _device_address("192.168.1.20:8470").base_url == "http://192.168.1.20:8470"
    assert str(_device_address("http://[fe80::1]:8470/")) == "[fe80::1]:8470"  # messages name it as host:port
    with pytest.raises(argparse.ArgumentTypeError, match="has no port; use host:port, for example"):
        _device_address("no-port-here")


def test_ipv6_address_prints_with_brackets():
    assert DeviceAddress("fe80::1", 80).base_url == "http://[fe80::1]:80"


def test_device_info_checks():
    info = {"id": "a1", "name": "cam", "api_version": 1, "hardware": {}, "model": {}, "source": {}}
    assert check_device_info(info) is info
    with pytest.raises(ProtocolMismatch, match="API version 2"):
        check_device_info({**info, "api_version": 2})
    with pytest.raises(ProtocolError, match="'id'"):
        check_device_info({**info, "id": ""})
    with pytest.raises(ProtocolError):
        check_device_info(["not", "an", "object"])
    assert check_health({"status": "degraded", "reasons": ["hot"]}) == {"status": "degraded", "reasons": ["hot"]}
    with pytest.raises(ProtocolError):
        check_health({"status": "fine"})
    with pytest.raises(ProtocolError):
        check_telemetry_sample({"ts": "yesterday"})


def test_telemetry_ring_is_bounded_and_in_time_order():
    history = TelemetryRing(capacity=5)
    for t in range(8):
        assert history.append(float(t), {"fps_inferred": t * 10, "temperature_c": None})
    assert not history.append(7.0, {"fps_inferred": 1})  # not newer: a refill cannot duplicate samples
    t, values = history.since(0)
    assert list(t) == [3, 4, 5, 6, 7]
    assert list(values["fps_inferred"]) == [30, 40, 50, 60, 70]
    assert all(math.isnan(v) for v in values["temperature_c"])  # unknown stays unknown, never 0
    t, _ = history.since(5.5)
    assert list(t) == [6, 7]


def test_dropped_frames_rate_from_the_cumulative_counter():
    rate = per_second_increase(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 5.0, 5.0, 1.0]))
    assert math.isnan(rate[0]) and list(rate[1:]) == [5.0, 0.0, 0.0]  # a restart (counter reset) is not negative


def test_store_keeps_first_seen_moves_last_seen_forward_and_uses_wal(tmp_path):
    path = tmp_path / "nested" / "console.sqlite"
    store = DeviceStore(path)
    store.record_seen(DeviceRecord("d1", "Press 1", "10.0.0.5", 8470, hardware={"arch": "aarch64"},
                                   first_seen=100.0, last_seen=100.0))
    store.record_seen(DeviceRecord("d1", "Press 1b", "10.0.0.6", 8471, first_seen=200.0, last_seen=300.0))
    store.record_seen(DeviceRecord("d1", "Press 1b", "10.0.0.6", 8471, last_seen=250.0))  # older news
    store.record_seen(DeviceRecord("manual:10.0.0.9:1", "10.0.0.9:1", "10.0.0.9", 1, manual=True))
    (d1, manual) = sorted(store.all_devices(), key=lambda r: r.id)
    assert (d1.name, d1.host, d1.port, d1.first_seen, d1.last_seen) == ("Press 1b", "10.0.0.6", 8471, 100.0, 300.0)
    assert d1.hardware == {"arch": "aarch64"}
    assert manual.manual and manual.last_seen is None
    store.forget("manual:10.0.0.9:1")
    store.close()
    # Another process (a second console, a crash before close) sees the committed rows.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in conn.execute("SELECT id FROM devices")] == ["d1"]


def test_charts_show_an_absence_as_a_gap():
    t, values = break_gaps(np.array([0.0, 1.0, 2.0, 30.0, 31.0]), {"cpu": np.array([1.0, 2, 3, 4, 5])}, 5.0)
    assert list(t) == [0.0, 1.0, 2.0, 4.5, 30.0, 31.0]
    assert math.isnan(values["cpu"][3]) and list(values["cpu"][[0, 1, 2, 4, 5]]) == [1, 2, 3, 4, 5]


