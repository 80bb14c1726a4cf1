"""Is this file an ONNX model at all? A cheap check of its outer shape, without onnx or onnxruntime.

An ONNX file is one protobuf message (ModelProto). Its top level is a short run of fields: the IR version, the
producer, the opsets, metadata, and the graph, which holds nearly every byte. Walking that top level reads a few
dozen bytes and skips over the rest, so a release, a bundle or a model picked for `edge-bundle build` can be
refused with a clear "not an ONNX model" before anything tries to load it (onnxruntime stays the judge of
whether a well-shaped model can run; its refusal is reported as well, see agent/updates/_service.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

# ModelProto's fields (onnx.proto): number -> wire type (0 varint, 2 length-delimited). Fields not listed (a newer
# ONNX) are allowed with any valid wire type.
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}
_FIXED = {1: 8, 5: 4}
MAX_TOP_LEVEL_FIELDS = 10_000  # real exports have a few dozen; a file of tiny fields would take long to walk


class _NotOnnx(Exception):
    pass


def _varint(f: BinaryIO) -> tuple[int, int]:
    """(value, bytes read)."""
    value = shift = 0
    for n in range(1, 11):
        byte = f.read(1)
        if not byte:
            raise _NotOnnx("it ends inside a field")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value, n
        shift += 7
    raise _NotOnnx("a damaged number")


def onnx_problem(f: BinaryIO, size: int) -> str | None:
    """None when the `size` bytes at `f` (a seekable file, at its start) have the shape of an ONNX model; else
    what is wrong, in words."""
    if size <= 0:
        return "it is empty"
    pos, seen, count = 0, set(), 0
    try:
        while pos < size:
            count += 1
            if count > MAX_TOP_LEVEL_FIELDS:
                raise _NotOnnx(f"more than {MAX_TOP_LEVEL_FIELDS} top-level fields")
            tag, n = _varint(f)
            pos += n
            number, wire = tag >> 3, tag & 7
            if number == 0 or wire not in (0, 1, 2, 5) or _MODEL_FIELDS.get(number, wire) != wire:
                raise _NotOnnx(f"byte {pos - n} is not the start of a model field")
            if wire == 0:
                pos += _varint(f)[1]
                skip = 0
            elif wire == 2:
                skip, n = _varint(f)
                pos += n
            else:
                skip = _FIXED[wire]
            if pos + skip > size:
                raise _NotOnnx("a field runs past the end of the file (cut short?)")
            f.seek(skip, 1)
            pos += skip
            seen.add(number)
    except _NotOnnx as exc:
        return str(exc)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    missing = [what for number, what in ((1, "no IR version"), (7, "no graph")) if number not in seen]
    return f"it has {' and '.join(missing)}" if missing else None


def onnx_file_problem(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return onnx_problem(f, Path(path).stat().st_size)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"


def not_onnx_message(name: str, problem: str) -> str:
    return (f"{name} is not an ONNX model ({problem}): a model must be an ONNX export (.onnx), not a PyTorch "
            "checkpoint or another file")
