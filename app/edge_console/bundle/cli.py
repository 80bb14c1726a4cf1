"""`edge-bundle`: build, sign, verify and inspect model releases on an offline machine.

A first release, from nothing (golden frames: images, or frames a console saved from the device's camera):
    edge-bundle keygen --dir authority                      # keys + root.json (give root.json to every device)
    edge-console compare --device HOST:PORT --frames 24 --save-frames golden-frames/   # .edgeframe files
    edge-bundle build models/parts-v2.onnx --line parts --version 2.0.0 --golden golden-frames/
    edge-bundle sign parts-2.0.0.edgebundle --dir authority # -> parts-2.0.0.edgerelease, for the USB stick
    edge-bundle verify parts-2.0.0.edgerelease --root authority/metadata/1.root.json --check   # --json: all of it
A device refused a release as replayed because a signer's clock once ran ahead (it names the version it holds):
    edge-bundle sign parts-2.0.0.edgebundle --dir authority --after-version 1790000000000
An offline kit for a site (make offline-kit builds and signs it):
    edge-bundle sign-kit dist/edge-console-kit-0.1.0 --dir authority
    edge-bundle verify-kit /media/usb/edge-console-kit-0.1.0 --root root.json
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

from edge_console.bundle import kit_sums
from edge_console.bundle.authority import ReleaseAuthority, public_key_from_json
from edge_console.bundle.summaries import earliest_expiry, golden_progress, verify_summary
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.releases.file_format import BundleError, manifest_summary, read_manifest
from edge_console.core.releases.stream import stage_release, verify_staged
from edge_console.core.releases.trust import ReleaseTrustError, install_root, trusted_root

EXAMPLES = __doc__.split("\n", 2)[2]


def _passphrase(args, confirm: bool = False) -> bytes | None:
    if not getattr(args, "passphrase", False):
        return None
    if env := os.environ.get("EDGE_BUNDLE_PASSPHRASE"):
        return env.encode()
    first = getpass.getpass("Passphrase for the signing keys: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise EdgeConsoleError("the passphrases differ; nothing was written")
    return first.encode()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-bundle", description="Model releases for Edge Console devices",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make a release authority: root, targets and delivery keys, root.json",
                            epilog="example: edge-bundle keygen --dir authority --console-key console-delivery.pub")
    keygen.add_argument("--dir", type=Path, default=Path("authority"))
    keygen.add_argument("--console-key", type=Path, action="append", default=[],
                        help="a console's delivery public key (edge-console release-key), allowed to deliver")
    keygen.add_argument("--passphrase", action="store_true", help="encrypt the keys (asked, or EDGE_BUNDLE_PASSPHRASE)")
    build = sub.add_parser("build", help="model + golden frames + model card -> a bundle",
                           epilog="example: edge-bundle build yolov8n.onnx --line dock-cam --version 1.2.0 "
                                  "--golden frames/ --latency-budget 40")
    build.add_argument("model", type=Path)
    build.add_argument("--line", required=True, help="the model line, e.g. parts (lower case)")
    build.add_argument("--version", required=True, help="semantic version, e.g. 2.1.0")
    build.add_argument("--golden", type=Path, required=True,
                       help="folder of golden frames: .png/.jpg images, or .edgeframe files saved from a device by "
                            "edge-console compare --save-frames DIR (stored as PNG), in any mix")
    build.add_argument("--card", type=Path, help="model card (default: MODEL_CARD.md beside the model)")
    build.add_argument("--latency-budget", type=float, metavar="MS", help="p95 inference time a device must meet")
    build.add_argument("--min-f1", type=float, default=0.95, help="golden-set F1 a device must reach (0.95)")
    build.add_argument("--arch", action="append", default=[], help="allowed architecture (repeatable; any if none)")
    build.add_argument("--min-agent-version", default="0.1.0")
    build.add_argument("--requires-provider", action="append", default=[],
                       help="execution provider the device must have, e.g. CUDAExecutionProvider")
    build.add_argument("--out", type=Path)
    sign = sub.add_parser("sign", help="sign a bundle into a release file",
                          epilog="example: edge-bundle sign parts-2.0.0.edgebundle --dir authority")
    sign.add_argument("bundle", type=Path)
    sign.add_argument("--dir", type=Path, default=Path("authority"))
    sign.add_argument("--out", type=Path)
    sign.add_argument("--passphrase", action="store_true")
    sign.add_argument("--after-version", type=int, default=0, metavar="N",
                      help="sign snapshot/timestamp above version N: the version a device that refused a release "
                           "as replayed says it holds (a signer's clock once ran ahead; see the README)")
    verify = sub.add_parser("verify", help="check a release file as a device would",
                            epilog="example: edge-bundle verify parts-2.0.0.edgerelease --root root.json --check")
    verify.add_argument("release", type=Path)
    verify.add_argument("--root", type=Path, required=True, help="the root.json devices trust")
    verify.add_argument("--check", action="store_true", help="also run the golden set on this machine")
    verify.add_argument("--json", action="store_true", help="print the result as JSON (default: a short summary)")
    inspect = sub.add_parser("inspect", help="show what a bundle or release file holds")
    inspect.add_argument("file", type=Path)
    rotate = sub.add_parser("rotate", help="new root version: revoke the targets key, add a console's key",
                            epilog="example: edge-bundle rotate --dir authority --new-targets-key")
    rotate.add_argument("--dir", type=Path, default=Path("authority"))
    rotate.add_argument("--new-targets-key", action="store_true", help="revoke the targets key, make a new one")
    rotate.add_argument("--add-console-key", type=Path, action="append", default=[])
    rotate.add_argument("--passphrase", action="store_true")
    sign_kit = sub.add_parser("sign-kit", help="write and sign SHA256SUMS of an offline kit (the targets key)",
                              epilog="example: edge-bundle sign-kit dist/edge-console-kit-0.1.0 --dir authority")
    sign_kit.add_argument("kit", type=Path, help="the kit folder (installers/kit/build_kit.py makes it)")
    sign_kit.add_argument("--dir", type=Path, default=Path("authority"))
    sign_kit.add_argument("--passphrase", action="store_true")
    verify_kit = sub.add_parser("verify-kit", help="check an offline kit as the install scripts do",
                                epilog="example: edge-bundle verify-kit /media/usb/edge-console-kit-0.1.0 --root "
                                       "root.json")
    verify_kit.add_argument("kit", type=Path)
    verify_kit.add_argument("--root", type=Path, help="the root.json the site trusts (default: the kit's own)")
    return parser


def _manifest_of(path: Path, work: Path):
    if path.suffix == ".edgerelease":
        with open(path, "rb") as source:
            staged = stage_release(source, work / "release")
        if staged.manifest is None:
            raise BundleError(staged.problem)
        return staged.manifest
    return read_manifest(path)


def run(args) -> int:
    if args.command == "keygen":
        consoles = [public_key_from_json(p.read_bytes()) for p in args.console_key]
        authority = ReleaseAuthority.create(args.dir, _passphrase(args, confirm=True), consoles)
        print(f"Release authority in {args.dir}: keys in {authority.keys_dir} (keep them offline), "
              f"root metadata {authority.metadata_dir / '1.root.json'} (install it on every device: "
              "edge-agent trust-root root.json)")
    elif args.command == "build":
        from edge_console.bundle.build import build_bundle

        out = build_bundle(args.model, args.line, args.version, args.golden, args.out, card=args.card,
                           latency_budget_p95_ms=args.latency_budget, min_f1=args.min_f1, architectures=args.arch,
                           min_agent_version=args.min_agent_version, required_providers=args.requires_provider,
                           progress=golden_progress(sys.stderr))
        print(f"Bundle written: {out}", file=sys.stderr)
        print(out)
    elif args.command == "sign":
        out = ReleaseAuthority(args.dir, _passphrase(args)).sign(args.bundle, args.out, args.after_version)
        print(f"Release written: {out}")
    elif args.command == "verify":
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            install_root(work / "trust", args.root.read_bytes())
            try:
                with open(args.release, "rb") as source:
                    staged = stage_release(source, work / "release")
                verified = verify_staged(work / "trust", staged)
            except (ReleaseTrustError, BundleError, tarfile.TarError) as exc:
                raise EdgeConsoleError(f"{args.release.name}: REFUSED, a device would not install it: {exc}") from None
            result = {"release": args.release.name, "signed": True, "bundle": verified.name,
                      "sha256": verified.sha256, "manifest": manifest_summary(staged.manifest),
                      "root_version": trusted_root(work / "trust").signed.version,
                      "expires": earliest_expiry(work / "trust")}
            if args.check:
                from edge_console.core.detection.detector import Detector
                from edge_console.core.releases.golden_check import run_golden_set

                result["golden"] = run_golden_set(Detector(staged.bundle_dir / "model.onnx"), staged.manifest,
                                                  staged.bundle_dir).to_dict()
        print(json.dumps(result, indent=1, default=str) if args.json else verify_summary(result))
        return 0 if result.get("golden", {}).get("passed", True) else 1
    elif args.command == "inspect":
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(manifest_summary(_manifest_of(args.file, Path(tmp))), indent=1, default=str))
    elif args.command == "rotate":
        authority = ReleaseAuthority(args.dir, _passphrase(args))
        if args.new_targets_key:
            authority.replace_targets_key()
        for path in args.add_console_key:
            key = public_key_from_json(path.read_bytes())
            authority.rotate(lambda root, k=key: (root.add_key(k, "snapshot"), root.add_key(k, "timestamp")))
        print(f"Root is now version {authority.roots()[-1].signed.version}; every release signed from now on "
              "carries it to the devices.")
    elif args.command == "sign-kit":
        signed = kit_sums.sign_kit(args.kit, ReleaseAuthority(args.dir, _passphrase(args)))
        print(f"Kit {signed['kit']} signed: {args.kit / kit_sums.SUMS} and {kit_sums.SIGNATURE} (targets key, root "
              f"version {signed['root_version']})")
    elif args.command == "verify-kit":
        try:
            report = kit_sums.verify_kit(args.kit, args.root.read_bytes() if args.root else None)
        except kit_sums.KitError as exc:
            raise EdgeConsoleError(f"kit refused: {exc}") from None
        print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (EdgeConsoleError, OSError) as exc:
        print(f"edge-bundle: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
