"""The ``.esnn`` model file: graph, parameters, quantization and metadata; data, not code.

Layout (all integers little-endian)::

    magic      8 bytes  b"\\x89ESN\\r\\n\\x1a\\n"  (catches text-mode transfers, like PNG)
    version    u32      format version
    header     u64 length, then UTF-8 JSON: graph, quantization, metadata, array table
    arrays     raw little-endian array bytes, each at a 16-byte aligned offset
    checksum   32 bytes SHA-256 of everything before it

The reader checks, in order: length, magic, version, checksum, then structure, so
each failure gets its own message. Arrays are typed by the table, never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgesnn.compile import Quantization
from edgesnn.errors import EdgesnnError, ModelFileError
from edgesnn.ir import NODE_TYPES, Graph

MAGIC = b"\x89ESN\r\n\x1a\n"
FORMAT_VERSION = 1
SUFFIX = ".esnn"
_PREFIX = struct.Struct("<8sIQ")
_DIGEST = 32
_ALIGN = 16
_DTYPES = {"<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8"}


@dataclass(eq=False)
class Model:
    """A graph plus what a deployment needs to know about it.

    ``metadata`` holds JSON values: name, task, classes (labels of output channels),
    channels (names of input features), and anything a model family adds.
    """

    graph: Graph
    quantization: Quantization | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _encode(model: Model) -> tuple[dict, list[np.ndarray]]:
    arrays: list[np.ndarray] = []

    def ref(a: np.ndarray) -> dict:
        arrays.append(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")))
        return {"array": len(arrays) - 1}

    nodes = []  # a list: node order fixes the execution order of independent nodes
    for name, node in model.graph.nodes.items():
        nodes.append({"name": name, "type": type(node).__name__,
                      **{f.name: ref(getattr(node, f.name))
                          if isinstance(getattr(node, f.name), np.ndarray)
                         else getattr(node, f.name) for f in fields(node)}})
    q = model.quantization
    header = {
        "graph": {"nodes": nodes, "edges": [list(e) for e in model.graph.edges],
                  "recurrent": [list(e) for e in model.graph.recurrent], "dt": model.graph.dt},
        "quantization": None if q is None else {"scales": q.scales, "error": q.error,
                                                "calibration": q.calibration},
        "metadata": model.metadata,
    }
    return header, arrays


def to_bytes(model: Model) -> bytes:
    from edgesnn import __version__

    header, arrays = _encode(model)
    offset, table = 0, []
    for a in arrays:
        offset = -(-offset // _ALIGN) * _ALIGN
        table.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                      "nbytes": a.nbytes})
        offset += a.nbytes
    header["arrays"] = table
    header["producer"] = f"edgesnn {__version__}"
    try:
        blob = json.dumps(header, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"metadata must be JSON values (finite numbers, strings, lists, "
                             f"dicts): {exc}") from None
    body = bytearray(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)) + blob)
    start = -(-len(body) // _ALIGN) * _ALIGN
    body += bytes(start - len(body))
    for a, entry in zip(arrays, table):
        body += bytes(start + entry["offset"] - len(body)) + a.tobytes()
    return bytes(body) + hashlib.sha256(body).digest()


def save(model: Model, path: str | Path) -> int:
    """Write ``model`` to ``path``; returns the number of bytes written."""
    data = to_bytes(model)
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return len(data)


def from_bytes(data: bytes, source: str = "model") -> Model:
    if not data:
        raise ModelFileError(f"{source}: empty file (0 bytes)")
    if data[:len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data):
            raise ModelFileError(f"{source}: truncated ({len(data)} bytes)")
        raise ModelFileError(f"{source}: not an edgesnn model file (bad magic bytes)")
    if len(data) < _PREFIX.size + _DIGEST:
        raise ModelFileError(f"{source}: truncated ({len(data)} bytes)")
    # Every format version ends in the same SHA-256 trailer, so the checksum is checked
    # first: a flipped bit in the version field reads as corruption, not as "too new".
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise ModelFileError(f"{source}: corrupt or truncated (checksum mismatch) — the file "
                             "was changed or cut short after it was written")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{source}: written with model format v{version}; this edgesnn "
                             f"reads up to v{FORMAT_VERSION} — upgrade edgesnn")
    if version < 1:
        raise ModelFileError(f"{source}: invalid format version {version}")
    if _PREFIX.size + header_len > len(body):
        raise ModelFileError(f"{source}: malformed header length")
    try:
        header = json.loads(body[_PREFIX.size:_PREFIX.size + header_len])
        start = -(-(_PREFIX.size + header_len) // _ALIGN) * _ALIGN
        arrays = [_read_array(body, start, entry) for entry in header["arrays"]]
        return _decode(header, arrays)
    except EdgesnnError as exc:
        raise ModelFileError(f"{source}: invalid model: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"{source}: malformed header ({type(exc).__name__}: {exc})") from None


def _read_array(body: bytes, start: int, entry: dict) -> np.ndarray:
    dtype, shape = entry["dtype"], tuple(int(d) for d in entry["shape"])
    if dtype not in _DTYPES:
        raise ValueError(f"unsupported array dtype {dtype!r}")
    begin = start + int(entry["offset"])
    count = int(np.prod(shape, dtype=np.int64))
    if begin < start or begin + count * np.dtype(dtype).itemsize > len(body) \
            or entry["nbytes"] != count * np.dtype(dtype).itemsize:
        raise ValueError("array table points outside the file")
    return np.frombuffer(body, dtype=dtype, count=count, offset=begin).reshape(shape).copy()


def _decode(header: dict, arrays: list[np.ndarray]) -> Model:
    g = header["graph"]
    nodes = {}
    for spec in g["nodes"]:
        spec = dict(spec)
        name, kind = spec.pop("name"), spec.pop("type")
        if name in nodes:
            raise ValueError(f"node name {name!r} appears twice")
        if kind not in NODE_TYPES:
            raise ValueError(f"unknown node type {kind!r} for node {name!r}")
        args = {k: arrays[v["array"]] if isinstance(v, dict) else v for k, v in spec.items()}
        nodes[name] = NODE_TYPES[kind](**args)
    graph = Graph(nodes, [tuple(e) for e in g["edges"]], [tuple(e) for e in g["recurrent"]],
                  dt=g["dt"])
    q = header["quantization"]
    quant = None if q is None else Quantization(
        scales={k: float(v) for k, v in q["scales"].items()}, error=q["error"],
        calibration=q["calibration"])
    return Model(graph=graph, quantization=quant, metadata=header["metadata"])


def load_model(path: str | Path) -> Model:
    """Read a model file, with a one-line error naming what is wrong."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from None
    return from_bytes(data, str(path))
