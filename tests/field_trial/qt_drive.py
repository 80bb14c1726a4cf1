"""One run drives the Qt console offscreen in the console's namespace: it browses mDNS on the site's bridge, lists
the devices it finds and (paired through the headless console's identity and pins) shows their streams; its
screenshot's layout chunk says what the window showed: devices listed, their status, tiles showing a live picture.
The Qt console is being changed by others as this is written: what it did is reported, not asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib

from tests.support.agent_harness import ROOT

from .site import FieldSite


def png_text(data: bytes) -> dict[str, str]:
    """The tEXt / zTXt / iTXt chunks of a PNG (no image library needed)."""
    out, pos = {}, 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            out[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
    return out


def drive_qt_console(site: FieldSite, after_s: float = 8.0) -> dict:
    """The Qt console with the headless console's data (its identity and pins: `--db` beside them), so it is the
    same, paired console; run from the run's folder so nothing it writes lands anywhere else."""
    shot = site.net.dir / "qt-console.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    try:
        proc = subprocess.run([*site.net.exec_prefix(site.net.console_ns), sys.executable, "-m",
                               "edge_console.console.cli", "--browse-interface", site.net.console_addr, "--db",
                               str(site.console.data_dir / "console.sqlite"), "--screenshot", str(shot), "--after",
                               f"{after_s:g}"], cwd=site.net.dir, env=env, capture_output=True, text=True,
                              timeout=180)
    except subprocess.TimeoutExpired:
        return {"ran": False, "why": "the Qt console did not finish its screenshot in 180 s"}
    out = {"ran": proc.returncode == 0, "rc": proc.returncode, "seconds": round(time.monotonic() - t0, 1)}
    if proc.returncode != 0:
        out["why"] = proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else ""
        return out
    try:
        layout = json.loads(png_text(shot.read_bytes()).get("edge-console:layout", "{}"))
    except Exception as exc:  # noqa: BLE001 - reported, not fatal: the Qt console is changing under us
        return {**out, "layout": None, "why": f"no layout chunk: {exc!r}"}
    rows = layout.get("table") or [] if isinstance(layout, dict) else []
    names = {d.name for d in site.devices}
    out["devices_listed"] = sum(1 for row in rows if row.get("name") in names)
    out["devices"] = len(site.devices)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.get("status", "?")] = statuses.get(row.get("status", "?"), 0) + 1
    out["statuses"] = statuses
    out["not_online"] = {row.get("name"): row.get("status") for row in rows if row.get("status") != "online"}
    out["live_tiles"] = sum(1 for tile in layout.get("tiles") or [] if tile.get("live"))
    return out
