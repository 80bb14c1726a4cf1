"""`edge-console compare --device HOST:PORT [--model PATH] [--frames N] [--json] [--save-frames DIR]`: the
comparison, headless. It runs the Compare panel's own coroutines (`CompareSession`) with `asyncio.run`.

Exit status: 0 when it ran (whatever the agreement); 1 an unexpected failure (one line, never a traceback); 2 bad
arguments or unusable local model; 3 device unreachable or sending unusable data; 4 models not comparable
(different classes). Everything the device said is printed escaped (terminal escapes, CR, bidi marks: \x1b, \u202e).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import aiohttp

from edge_console.client.compare.fetch import NOT_AN_AGENT, DeviceFetchError, DeviceFrame
from edge_console.client.compare.saved_frames import save_frame
from edge_console.client.compare.session import CompareSession
from edge_console.client.net.addresses import EXAMPLE, DeviceAddress, parse_host_port
from edge_console.client.net.bound_session import DeviceBoundSession
from edge_console.client.net.device_access import CertificateChanged, NoLongerPaired, NotAnAgentAnswer, reach
from edge_console.client.net.device_answers import UnreadableAnswer
from edge_console.client.trust_store import ConsoleTrust, PinStore, default_data_dir
from edge_console.core.detection.comparison import FrameComparison, IncompatibleModelsError, summarize
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.errors import ModelError
from edge_console.core.paths import models_dir
from edge_console.core.protocol import ProtocolError
from edge_console.core.terminal_text import for_terminal


def _device_address(text: str) -> DeviceAddress:
    """The device from what the user typed (the console's one address parser and its messages); messages name
    it as host:port, as typed, never as a URL the user did not write."""
    try:
        return parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def unwritable_folder(folder: Path) -> str | None:
    """Why frames cannot be saved into `folder` (created if missing), or None: checked by creating it and writing a
    probe file, the only test that holds for permissions, read-only mounts and a file in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        return f"cannot write there ({exc.strerror or exc})"
    return None


def _line(f: FrameComparison) -> str:
    d = f.to_dict()
    dt, lt = f.device_timings, f.local_timings
    return (f"frame #{f.seq}: matched {d['matched']}, device only {d['only_device']}, local only {d['only_local']}, "
            f"class mismatches {d['class_mismatches']}; P {d['precision']:.3f} R {d['recall']:.3f} "
            f"F1 {d['f1']:.3f} mean IoU {d['mean_iou']:.3f} | ms pre/inf/post device "
            f"{dt.preprocess_ms:.1f}/{dt.inference_ms:.1f}/{dt.postprocess_ms:.1f} local "
            f"{lt.preprocess_ms:.1f}/{lt.inference_ms:.1f}/{lt.postprocess_ms:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-console compare",
                                     description="Run a local model on the device's own frames and compare results")
    parser.add_argument("--device", required=True, type=_device_address, metavar="HOST:PORT",
                        help=f"the device's agent, e.g. {EXAMPLE}")
    parser.add_argument("--model", type=Path, help="local ONNX model (default: the library's copy of the device's)")
    parser.add_argument("--library", type=Path, action="append", default=[],
                        help="extra model folder to search, e.g. a USB stick (models/ is always searched)")
    parser.add_argument("--frames", type=int, default=5, help="frames to compare (default 5)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for two boxes to match (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (per-frame and overall) last")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the console's data folder, whose identity is paired with the device (default: the "
                             "user's data directory; pair with `edge-console pair HOST:PORT`)")
    parser.add_argument("--save-frames", type=Path, metavar="DIR",
                        help="also save the compared frames exactly as the device sent them, to compare them again "
                             "later (the console's Compare panel replays such a folder)")
    args = parser.parse_args(argv)
    if args.frames < 1 or not 0 < args.iou <= 1:
        parser.error("--frames must be >= 1 and --iou in (0, 1]")
    if args.save_frames is not None and (problem := unwritable_folder(args.save_frames)):
        parser.error(f"--save-frames {args.save_frames}: {problem}")  # before the comparison, not after it
    try:
        library = ModelLibrary([models_dir(), *args.library])
    except FileNotFoundError as exc:
        parser.error(str(exc))
    def say(line: str) -> None:  # every line may quote the device: escaped for the terminal
        print(for_terminal(line), file=sys.stderr if args.json else sys.stdout)

    def fail(exc: BaseException, status: int) -> int:
        print(f"edge-console compare: {for_terminal(exc)}", file=sys.stderr)
        return status

    try:
        info, spec, frames = asyncio.run(_compare(args, library, say))
    except (DeviceFetchError, ProtocolError) as exc:  # ProtocolError: an answer the console cannot read
        return fail(exc, 3)
    except IncompatibleModelsError as exc:
        return fail(exc, 4)
    except (ModelError, OSError) as exc:
        return fail(exc, 2)
    except Exception as exc:  # a failure nobody expected: one line, not a traceback (-v style detail in the log)
        logging.getLogger(__name__).debug("compare failed", exc_info=exc)
        return fail(RuntimeError(f"unexpected failure ({exc.__class__.__name__}: {exc})"), 1)
    summary = summarize(frames)
    say(f"overall over {summary['frames']} frames: P {summary['precision']:.3f} R {summary['recall']:.3f} "
        f"F1 {summary['f1']:.3f} mean IoU {summary['mean_iou']:.3f}, {summary['disagreeing_frames']} frames disagree")
    if args.json:
        print(json.dumps({"device": str(args.device), "device_model": info["model"], "local_model": spec.describe(),
                          "frames": [f.to_dict() for f in frames], "summary": summary}))
    return 0


async def _compare(args: argparse.Namespace, library: ModelLibrary,
                   say: Callable[[str], None]) -> tuple[dict, object, list[FrameComparison]]:
    frames: list[FrameComparison] = []

    def compared(frame: DeviceFrame, comparison: FrameComparison) -> None:
        frames.append(comparison)
        if args.save_frames is not None:
            save_frame(args.save_frames, frame.header.seq, frame.message)  # this frame's own bytes
        say(_line(comparison))

    async with aiohttp.ClientSession() as http:
        base_url, tls = await _reach_paired(http, args.device, args.data_dir)
        session = await CompareSession.open(DeviceBoundSession(http, tls), base_url, library, args.model,
                                            iou=args.iou)
        spec, info = session.detector.spec, session.info
        model = info["model"]  # fetch_info checked it is an object
        say(for_terminal(f"device {info.get('name', '?')} ({args.device}) runs {model.get('name', '?')} "
                         f"{model.get('version', '?')}; ", 300) +
            f"local: {spec.name} {spec.version} on {session.detector.provider}")
        await session.run(compared, count=args.frames, keep_image=False)
    return info, spec, frames


async def _reach_paired(http: aiohttp.ClientSession, address, data_dir: Path | None):
    """The device's base URL and pinned TLS context; DeviceFetchError when this console may not talk to it."""
    folder = data_dir or default_data_dir()
    trust = ConsoleTrust(folder)
    database = folder / "console.sqlite"
    if database.exists():
        pins = PinStore(database)
        trust.load(pins.all())
        pins.close()
    try:
        access = await reach(http, address, trust.contexts, trust.pin_for)
    except (CertificateChanged, NoLongerPaired) as exc:
        raise DeviceFetchError(str(exc)) from None
    except NotAnAgentAnswer as exc:
        raise DeviceFetchError(f"{NOT_AN_AGENT}: {address} {exc}; the agent listens on 8470 unless configured "
                               "otherwise") from None
    except UnreadableAnswer as exc:
        raise DeviceFetchError(f"{address}: {exc}") from None
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        raise DeviceFetchError(f"cannot reach the device at {address}: {exc or type(exc).__name__}. Is it powered, "
                               "on this network, and is the address right?") from None
    if access.role is None:
        raise DeviceFetchError(f"{address} is not paired with this console: pair first with "
                               f"`edge-console pair {address}` (the device shows the code: edge-agent pair)")
    return access.base_url, access.tls


if __name__ == "__main__":
    sys.exit(main())
