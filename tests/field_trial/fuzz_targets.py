"""The fuzz targets for parsers that need no server: each is (strategy, check[, known]); see fuzz.py."""

from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
import tempfile
from pathlib import Path

from hypothesis import strategies as st

# -- strategies ----------------------------------------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=20)
number_texts = st.one_of(st.text(max_size=12), st.sampled_from(["nan", "inf", "-inf", "1e999", "-0", "0x10", " 5 ",
                                                                "1_000", "١٢", "3.5", "9" * 40, "", "\x00"]),
                         st.integers(-10**12, 10**12).map(str), st.floats().map(repr))


def _json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def deep(n: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '{"a":' * n + "1" + "}" * n if opener == "{" else opener * n + closer * n
    return inner


# -- targets: pure parsers -----------------------------------------------------------------------------------------
def frame_target():
    from edge_console.core.protocol import ProtocolError, decode_frame_message

    header_fields = st.fixed_dictionaries({}, optional={
        "seq": json_scalars, "capture_ts": json_scalars, "model_version": json_scalars, "width": json_scalars,
        "height": json_scalars, "timings": st.one_of(json_values, st.fixed_dictionaries(
            {}, optional={"preprocess_ms": json_scalars, "inference_ms": json_scalars})),
        "detections": st.one_of(json_values, st.lists(st.fixed_dictionaries({}, optional={
            "box": json_values, "x1": json_scalars, "y1": json_scalars, "x2": json_scalars, "y2": json_scalars,
            "score": json_scalars, "class_id": json_scalars, "label": json_scalars, "class_name": json_scalars}),
            max_size=4))})

    @st.composite
    def structured(draw):
        header = draw(st.one_of(header_fields.map(_json_bytes), json_values.map(_json_bytes), st.binary(max_size=64),
                                st.integers(1, 4000).map(lambda n: deep(n).encode())))
        length = draw(st.one_of(st.just(len(header)), st.integers(0, 2**32 - 1)))
        image = draw(st.sampled_from([b"\xff\xd8", b"\x89PNG", b"BM", b"", b"GIF8"])) + draw(st.binary(max_size=32))
        return length.to_bytes(4, "big") + header + image

    def check(data: bytes) -> None:
        try:
            header, image = decode_frame_message(data)
        except ProtocolError:
            return
        assert isinstance(header.seq, int) and isinstance(header.width, int) and isinstance(image, bytes)

    return st.one_of(st.binary(max_size=512), structured()), check


def txt_target():
    from edge_console.client.net.addresses import unusable_address_reason
    from edge_console.client.net.mdns_browser import (
        DEVICE_ID,
        MAX_NAME_CHARS,
        MAX_TXT_VALUE_CHARS,
        service_from_announcement,
    )
    from edge_console.core.protocol import SERVICE_TYPE

    keys = st.one_of(st.binary(max_size=80), st.sampled_from([b"id", b"ID", b"name", b"Name", b"", b"model", b"fp"]))
    values = st.one_of(st.none(), st.binary(max_size=400), st.text(max_size=300).map(str.encode))
    hosts = st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=30),
                               st.sampled_from(["0.0.0.0", "255.255.255.255", "224.0.0.251", "127.0.0.1", "::"])),
                     max_size=5)
    names = st.one_of(st.text(max_size=300), st.text(max_size=60).map(lambda t: f"{t}.{SERVICE_TYPE}"))

    def check(args) -> None:
        name, port, host_list, props = args
        service = service_from_announcement(name, port, host_list, props)
        assert len(service.name) <= MAX_NAME_CHARS and all(c.isprintable() for c in service.name)
        assert DEVICE_ID.fullmatch(service.device_id) or service.device_id == name
        assert all(len(v) <= MAX_TXT_VALUE_CHARS and all(c.isprintable() for c in v) for v in service.txt.values())
        assert all(unusable_address_reason(a.host) is None and 0 < a.port < 65536 for a in service.addresses)

    return st.tuples(names, st.integers(-5, 70000), hosts, st.dictionaries(keys, values, max_size=20)), check


def control_target():
    from edge_console.agent.api.control_messages import ControlMessageError, parse_control_message

    texts = st.one_of(st.text(max_size=300), json_values.map(lambda v: json.dumps(v, allow_nan=True)),
                      st.integers(1, 5000).map(deep), st.integers(1, 5000).map(lambda n: deep(n, "{")),
                      st.text(alphabet='[]{}"\\,:1 ', max_size=400))

    def check(text: str) -> None:
        try:
            assert isinstance(parse_control_message(text), dict)
        except ControlMessageError:
            pass

    return texts, check


def stream_settings_target():
    from edge_console.agent.api.server import StreamSettings

    values = st.one_of(number_texts, json_scalars, st.lists(st.integers(), max_size=2), st.binary(max_size=8))
    mapping = st.dictionaries(st.sampled_from(["max_fps", "quality", "max_width", "type", "other"]), values,
                              max_size=4)

    def check(values: dict) -> None:
        s = StreamSettings()
        before = (s.max_fps, s.quality, s.max_width)
        try:
            s.update(values)
        except ValueError:
            assert (s.max_fps, s.quality, s.max_width) == before  # all or nothing
            return
        assert math.isfinite(s.max_fps) and 0.1 <= s.max_fps <= 120
        assert 10 <= s.quality <= 100 and (s.max_width == 0 or 32 <= s.max_width <= 8192)

    return mapping, check


def config_targets(folder: Path):
    from dataclasses import fields

    from edge_console.agent.config import AgentConfig, ConfigError, build_config, check_types, load_toml

    known_keys = [f.name for f in fields(AgentConfig)]

    def toml_value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(toml_value(x) for x in v) + "]"
        return json.dumps(str(v))

    toml_scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(max_size=30))
    toml_docs = st.dictionaries(st.one_of(st.sampled_from(known_keys), st.text(max_size=10)),
                                st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3)), max_size=8)

    @st.composite
    def documents(draw):
        doc = draw(toml_docs)
        body = "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())
        if draw(st.booleans()):
            body = "[agent]\n" + body
        return body

    raw = st.one_of(documents(), st.text(max_size=300), st.binary(max_size=200).map(
        lambda b: b.decode("latin-1")), st.sampled_from(["agent = 5\n", "[agent]\n[agent.x]\n", "a.b.c = 1\n" * 3,
                                                         "x = [" * 600 + "]" * 600]))
    path = folder / "agent.toml"

    def check_file(text: str) -> None:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            values = load_toml(path)
        except ConfigError:
            return
        assert set(values) <= set(known_keys)
        try:
            config = build_config(path, {"model": "parts-v1", "state_dir": str(folder / "state")})
        except ConfigError:
            return
        assert 0 <= config.port <= 65535 and 0 < config.fps <= 240 and 1 <= config.probation_s <= 86400

    def check_types_only(values: dict) -> None:
        try:
            check_types(values, "fuzz")
        except ConfigError:
            pass

    typed = st.dictionaries(st.sampled_from(known_keys), st.one_of(json_scalars, st.lists(json_scalars, max_size=3)),
                            max_size=6)
    return (raw, check_file), (typed, check_types_only)


def manifest_target():
    from edge_console.core.releases.file_format import FORMAT, BundleError, BundleManifest

    valid = {"format": FORMAT, "model_line": "parts", "version": "2.0.0", "created_at": 1.0, "description": "d",
             "model": {"name": "parts"}, "members": {"model.onnx": {"sha256": "0" * 64, "size": 10},
                                                      "golden/0000.png": {"sha256": "1" * 64, "size": 5}},
             "compatibility": {"architectures": ["x86_64"], "min_agent_version": "0", "required_providers": []},
             "golden": {"min_f1": 0.9, "iou": 0.5, "frames": [{"image": "golden/0000.png", "detections": [
                 {"box": [1, 2, 3, 4], "score": 0.9, "class_id": 0, "label": "bolt"}]}]},
             "latency_budget_p95_ms": 20}
    paths = [("format",), ("model_line",), ("version",), ("created_at",), ("description",), ("model",), ("members",),
             ("members", "model.onnx"), ("members", "model.onnx", "size"), ("members", "model.onnx", "sha256"),
             ("compatibility",), ("compatibility", "architectures"), ("golden",), ("golden", "min_f1"),
             ("golden", "iou"), ("golden", "frames"), ("latency_budget_p95_ms",)]

    @st.composite
    def mutated(draw):
        doc = json.loads(json.dumps(valid))
        for _ in range(draw(st.integers(1, 4))):
            path = draw(st.sampled_from(paths))
            node = doc
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                if draw(st.booleans()):
                    node[path[-1]] = draw(st.one_of(json_values, st.sampled_from([1e999, -1e999, float("nan"),
                                                                                  10**400, "1e999"])))
                else:
                    node.pop(path[-1], None)
        return doc

    def check(doc) -> None:
        try:
            BundleManifest.from_dict(doc)
        except BundleError:
            pass

    return st.one_of(mutated(), json_values), check


def stage_target(folder: Path):
    from edge_console.core.releases.file_format import BundleError
    from edge_console.core.releases.stream import stage_release, verify_staged
    from edge_console.core.releases.trust import ReleaseTrustError

    @st.composite
    def bundles(draw):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            manifest = draw(st.one_of(json_values.map(_json_bytes), st.binary(max_size=64),
                                      st.integers(1, 3000).map(lambda n: deep(n).encode()),
                                      st.just(b'{"format": "edge-bundle/1", "members": {"model.onnx": '
                                              b'{"sha256": "x", "size": 1e999}}}')))
            for name, data in [("manifest.json", manifest)] + draw(st.lists(st.tuples(
                    st.sampled_from(["model.onnx", "MODEL_CARD.md", "golden/0.png", "../x", "/abs", "a/b/c"]),
                    st.binary(max_size=64)), max_size=3)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    @st.composite
    def releases(draw):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            items = draw(st.lists(st.tuples(
                st.sampled_from(["metadata/root.json", "metadata/timestamp.json", "metadata/targets.json",
                                 "targets/x.edgebundle", "targets/y.edgebundle", "metadata/../x", "x", ".hidden",
                                 "metadata/.x", "targets/x.tar"]),
                st.one_of(st.binary(max_size=64), json_values.map(_json_bytes), bundles())), max_size=5))
            for name, data in items:
                info = tarfile.TarInfo(name)
                kind = draw(st.sampled_from([tarfile.REGTYPE] * 6 + [tarfile.SYMTYPE, tarfile.DIRTYPE,
                                                                     tarfile.LNKTYPE]))
                info.type = kind
                if kind == tarfile.REGTYPE:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    info.linkname = "/etc/passwd"
                    tar.addfile(info)
        data = out.getvalue()
        cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
        return data if cut is None else data[:cut]

    trust = folder / "trust"
    trust.mkdir(exist_ok=True)

    def check(data: bytes) -> None:
        work = Path(tempfile.mkdtemp(dir=folder))
        try:
            try:
                staged = stage_release(io.BytesIO(data), work / "staged")
                verify_staged(trust, staged)
            except (ReleaseTrustError, BundleError):
                pass
            for path in work.rglob("*"):  # nothing outside the staging folder, no links
                assert not path.is_symlink() and (work / "staged") in [path, *path.parents], path
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return st.one_of(st.binary(max_size=1024), releases()), check


def audit_targets(folder: Path):
    from edge_console.core.audit.chain import GENESIS, make_entry, verify_chain
    from edge_console.core.audit.log import AuditLog

    def chain(n: int) -> list[dict]:
        out, prev = [], GENESIS
        for i in range(1, n + 1):
            entry = make_entry(i, prev, 1.0 + i, "fuzz", "event", {"i": i})
            out.append(entry)
            prev = entry["hash"]
        return out

    @st.composite
    def entries(draw):
        items = chain(draw(st.integers(0, 6)))
        for _ in range(draw(st.integers(0, 3))):
            if not items:
                break
            i = draw(st.integers(0, len(items) - 1))
            action = draw(st.sampled_from(["edit", "drop", "swap", "junk", "dup"]))
            if action == "edit" and isinstance(items[i], dict):
                items[i] = {**items[i], draw(st.sampled_from(["seq", "prev", "hash", "event", "details"])):
                            draw(json_values)}
            elif action == "drop":
                items.pop(i)
            elif action == "swap" and len(items) > 1:
                items[i], items[0] = items[0], items[i]
            elif action == "junk":
                items.insert(i, draw(json_values))
            else:
                items.insert(i, dict(items[i]) if isinstance(items[i], dict) else items[i])
        return items, draw(st.one_of(st.none(), st.text(max_size=64), st.sampled_from([e["hash"] for e in items
                                                                                         if isinstance(e, dict) and
                                                                                         "hash" in e] or [""])))

    def check_chain(args) -> None:
        items, head = args
        report = verify_chain(items, head)
        assert isinstance(report.ok, bool)
        if report.ok:
            assert report.entries == len(items)

    @st.composite
    def files(draw):
        lines = [json.dumps(e, separators=(",", ":")).encode() for e in chain(draw(st.integers(0, 5)))]
        for _ in range(draw(st.integers(0, 3))):
            i = draw(st.integers(0, len(lines)))
            lines.insert(i, draw(st.one_of(st.binary(max_size=80), json_values.map(_json_bytes),
                                           st.just(b'{"seq": 1e999, "hash": "x"}'),
                                           st.just(b'{"seq": 3, "hash": 5}'))))
        body = b"\n".join(lines) + (b"\n" if lines else b"")
        torn = draw(st.one_of(st.just(b""), st.binary(min_size=1, max_size=60)))
        return body + torn

    path = folder / "audit.log"

    def check_file(data: bytes) -> None:
        for extra in (path, path.with_name("audit.log.torn")):
            extra.unlink(missing_ok=True)
        path.write_bytes(data)
        log = AuditLog(path)
        log.entries()
        log.verify()
        entry = log.append("fuzz", "after recovery")
        assert path.read_bytes().endswith(b"\n")  # a torn tail was set aside, the new entry is a whole line
        assert any(e.get("hash") == entry["hash"] for e in log.entries())

    return (entries(), check_chain), (files(), check_file)
