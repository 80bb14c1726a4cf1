"""The console's command line and its guards before and around Qt. (The Qt-free parts, addresses, device-info
checks, the telemetry ring and the database among them, are tested without Qt in tests/client.)"""

from __future__ import annotations

import pytest

from edge_console.console import qt_compat


def test_cli_rejects_a_bad_address_before_opening_any_window(capsys):
    from edge_console.console.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--add", "192.168.1.20"])
    assert exit_info.value.code == 2
    assert "has no port" in capsys.readouterr().err


def test_a_missing_x11_library_is_named_before_qt_aborts(monkeypatch):
    from edge_console.console import platform_check

    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(platform_check.ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else name)
    message = platform_check.display_problem()
    assert "sudo apt install libxcb-cursor0" in message and "QT_QPA_PLATFORM=offscreen" in message
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # headless runs never need X11
    assert platform_check.display_problem() is None


def test_the_binding_guard_probes_only_the_affected_pyside6_release(monkeypatch):
    probed = []
    monkeypatch.setattr(qt_compat, "signal_emit_drops_true_references", lambda: probed.append(1) or False)
    assert qt_compat.guard_signal_emit_refcount("6.11.3") is None
    assert probed == []  # a sound release is not probed at every start
    assert qt_compat.guard_signal_emit_refcount("6.12.0") is None  # affected release, but this build is sound
    assert probed == [1]
