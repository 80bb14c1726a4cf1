"""`edge-agent run` serves one device; `edge-agent simulate` runs a fleet of them on this machine."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge_console.agent.api import log_limits
from edge_console.agent.config import ConfigError, build_config
from edge_console.agent.trust.cli import add_trust_commands, run_trust_command
from edge_console.agent.updates import add_update_commands, run_update_command
from edge_console.core.errors import EdgeConsoleError


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML file with the same settings (flags win)")
    p.add_argument("--source", help="camera index (0), video file (looped), rtsp:// or http:// URL, or 'synthetic'")
    p.add_argument("--model", help="ONNX model: a file, or a name from the model library (e.g. parts-v2)")
    p.add_argument("--model-dir", dest="model_dirs", action="append", metavar="DIR",
                   help="extra folder of models to find --model names in; repeatable (the shipped models are "
                        "always searched)")
    p.add_argument("--name", help="human name shown in the console (default: host name)")
    p.add_argument("--port", type=int, help="API port (default 8470; 0 picks a free one and prints it)")
    p.add_argument("--interface", dest="interfaces", action="append", metavar="ADDR",
                   help="IPv4 address to listen on and advertise; repeatable (default: all interfaces)")
    p.add_argument("--allow-host", dest="allowed_hosts", action="append", metavar="NAME_OR_ADDR",
                   help="a host name or address consoles reach this device by besides its own (behind a NAT or a "
                        "container's published port); repeatable")
    p.add_argument("--instance", help="this agent's name among several on one host (default 'default'); each "
                   "instance keeps its own identity and history under the state root")
    p.add_argument("--state-dir", help="where the device id and telemetry history are kept (default: "
                   "<state root>/<instance>)")
    p.add_argument("--fps", type=float, help="frame rate of synthetic and file sources (default 15)")
    p.add_argument("--width", type=int, help="synthetic source width (default 640)")
    p.add_argument("--height", type=int, help="synthetic source height (default 480)")
    p.add_argument("--seed", type=int, help="synthetic scene seed")
    p.add_argument("--provider", help="force an execution provider: cpu, cuda, tensorrt, openvino, coreml, directml")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    p.add_argument("--injected-delay-ms", type=float, help=argparse.SUPPRESS)
    p.add_argument("--no-advertise", dest="advertise", action="store_const", const=False,
                   help="do not announce over mDNS")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--insecure-lab-mode", action="store_const", const=True,
                   help="plain HTTP with every route open to anyone, no pairing: for bench set-ups and scripted "
                        "probes only, never on a site")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent", description="Edge inference device agent")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_args(sub.add_parser("run", help="capture, infer, stream and advertise this device"))
    sim = sub.add_parser("simulate", help="run N simulated devices on this machine (demo and tests)")
    sim.add_argument("--count", type=_positive_int, default=3, help="how many devices (default 3)")
    sim.add_argument("--interface", dest="interfaces", action="append", metavar="ADDR",
                     help="address to listen on and advertise (use 127.0.0.1 for a private demo)")
    sim.add_argument("--base-dir", type=Path, help="state folder for the simulated devices (default: a temp dir)")
    sim.add_argument("--fps", type=float, default=15.0)
    sim.add_argument("--enrol-console", type=Path, metavar="CERT",
                     help="pair every simulated device with the console whose certificate this is (the demo)")
    sim.add_argument("--release-root", type=Path, metavar="ROOT_JSON",
                     help="give every simulated device this release authority's root.json to trust")
    add_trust_commands(sub)
    add_update_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        log_limits.install(handler)
    try:
        if args.command == "simulate":
            from edge_console.agent.simulate import run_fleet

            return run_fleet(args.count, args.interfaces or [], args.base_dir, args.fps, args.enrol_console,
                             args.release_root)
        if args.command in ("pair", "pairings", "unpair", "enrol"):
            return run_trust_command(args)
        if args.command in ("install", "versions", "rollback", "trust-root", "audit"):
            return run_update_command(args)
        overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config", "verbose")}
        config = build_config(args.config, overrides)
        from edge_console.agent.serve import serve

        return serve(config)
    except (ConfigError, EdgeConsoleError, OSError) as exc:
        print(f"edge-agent: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
