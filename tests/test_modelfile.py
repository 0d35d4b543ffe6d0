"""The .esnn model file: lossless round trips of every node type, quantization and
metadata, and a one-line ModelFileError for every kind of bad file."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import fields

import numpy as np
import pytest

import edgesnn
from edgesnn.errors import ModelFileError
from edgesnn.ir import (LI, LIF, NODE_TYPES, AdaptiveLIF, Affine, CubaLIF, Graph, GroupedLinear, Input, Linear,
                        Output, SpikeEncoder, Threshold)
from conftest import mixed_graph
from edgesnn.modelfile import FORMAT_VERSION, MAGIC, from_bytes, to_bytes

_PREFIX = struct.Struct("<8sIQ")  # magic, version, header length: the documented layout
_DIGEST = 32


# ----------------------------------------------------------------------------- helpers

def _weights(rng: np.random.Generator, shape) -> np.ndarray:
    """Random float32 weights with values that a lossy (text, float64) path would change:
    negative zero, a subnormal, a huge value and a value that needs all 24 mantissa bits."""
    w = rng.normal(0.0, 0.7, shape).astype(np.float32)
    flat = w.reshape(-1)
    specials = [np.float32(-0.0), np.float32(1e-45), np.float32(3.0e38),
                np.nextafter(np.float32(1.0), np.float32(2.0))]
    flat[:min(len(specials), flat.size)] = specials[:flat.size]
    return w


def _decay(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.uniform(0.0, 1.0, n).astype(np.float32)
    d[0] = 1.0  # the closed upper bound
    return d


def _thr(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.1, 2.0, n).astype(np.float32)


def _rebuild(header: dict | bytes, tail: bytes = b"", version: int = FORMAT_VERSION) -> bytes:
    """A file with the documented layout around ``header`` (a dict or raw header bytes):
    magic, <u32 version, <u64 header length, header, zero padding to 16, ``tail`` (the
    array bytes), SHA-256 of all of it. The checksum is always valid."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = _PREFIX.pack(MAGIC, version, len(blob)) + blob
    body += bytes(-len(body) % 16) + tail
    return body + hashlib.sha256(body).digest()


def _split(data: bytes) -> tuple[dict, bytes]:
    """(header dict, array bytes) of a valid file."""
    _, _, n = _PREFIX.unpack_from(data)
    start = -(-(_PREFIX.size + n) // 16) * 16
    return json.loads(data[_PREFIX.size:_PREFIX.size + n]), data[start:-_DIGEST]


def _assert_same_model(a: edgesnn.Model, b: edgesnn.Model) -> None:
    assert a.graph == b.graph
    assert list(a.graph.nodes) == list(b.graph.nodes)  # node order survives
    assert a.graph.edges == b.graph.edges and a.graph.recurrent == b.graph.recurrent
    assert a.graph.dt == b.graph.dt
    for name, node in a.graph.nodes.items():
        other = b.graph.nodes[name]
        assert type(other) is type(node)
        for f in fields(node):
            mine, theirs = getattr(node, f.name), getattr(other, f.name)
            if isinstance(mine, np.ndarray):
                assert isinstance(theirs, np.ndarray), (name, f.name)
                assert theirs.dtype == mine.dtype, (name, f.name, theirs.dtype)
                assert theirs.shape == mine.shape, (name, f.name)
                assert np.array_equal(theirs, mine), (name, f.name)
                # bit-identical, including -0.0 and subnormals
                assert np.ascontiguousarray(theirs).tobytes() == \
                    np.ascontiguousarray(mine).tobytes(), (name, f.name)
            else:
                assert type(theirs) is type(mine) and theirs == mine, (name, f.name)
    assert b.metadata == a.metadata


# ------------------------------------------------------- one small graph per node type
# Keyed by type name; a node type added to NODE_TYPES without a builder here fails
# test_every_node_type_has_a_round_trip_graph.

def _g_input(rng):
    return Graph({"in": Input(5), "fc": Affine(_weights(rng, (3, 5)), _weights(rng, 3)),
                  "out": Output(3)},
                 [("in", "fc"), ("fc", "out")], dt=0.002)


def _g_output(rng):
    # Output listed first: the file must keep dict order, not re-sort topologically
    return Graph({"out": Output(2), "in": Input(4), "lin": Linear(_weights(rng, (2, 4)))},
                 [("in", "lin"), ("lin", "out")], dt=0.5)


def _g_affine(rng):
    # two parallel branches summed at the output, independent nodes in a chosen order
    return Graph({"in": Input(4), "b2": Affine(_weights(rng, (6, 4)), _weights(rng, 6)),
                  "b1": Affine(_weights(rng, (6, 4)), _weights(rng, 6)), "out": Output(6)},
                 [("in", "b1"), ("in", "b2"), ("b1", "out"), ("b2", "out")], dt=1e-3)


def _g_linear(rng):
    return Graph({"in": Input(4), "lin": Linear(_weights(rng, (3, 4))), "out": Output(3)},
                 [("in", "lin"), ("lin", "out")])  # dt not set


def _g_grouped(rng):
    # one (2 × 4) block shared by 3 groups: 12 inputs → 6 outputs
    return Graph({"in": Input(12), "g": GroupedLinear(3, _weights(rng, (2, 4))), "out": Output(6)},
                 [("in", "g"), ("g", "out")], dt=0.02)


def _g_lif(rng):
    # Input -> fc -> lif -> out, with lif -> rec (recurrent) -> lif
    return Graph({"in": Input(4), "fc": Affine(_weights(rng, (6, 4)), _weights(rng, 6)),
                  "lif": LIF(6, _decay(rng, 6), _thr(rng, 6), reset="zero"),
                  "rec": Linear(_weights(rng, (6, 6))), "out": Output(6)},
                 [("in", "fc"), ("fc", "lif"), ("rec", "lif"), ("lif", "out")],
                 recurrent=[("lif", "rec")], dt=0.01)


def _g_cuba(rng):
    # a recurrent self-loop on the neuron itself
    return Graph({"in": Input(3), "fc": Affine(_weights(rng, (5, 3)), _weights(rng, 5)),
                  "cuba": CubaLIF(5, _decay(rng, 5), _decay(rng, 5), _thr(rng, 5)),
                  "out": Output(5)},
                 [("in", "fc"), ("fc", "cuba"), ("cuba", "out")],
                 recurrent=[("cuba", "cuba")], dt=0.004)


def _g_adaptive(rng):
    node = AdaptiveLIF(5, _decay(rng, 5), _decay(rng, 5), _thr(rng, 5), _decay(rng, 5),
                       _weights(rng, (5, 5)), reset="zero")
    return Graph({"in": Input(3), "fc": Affine(_weights(rng, (5, 3)), _weights(rng, 5)),
                  "iwta": node, "out": Output(5)},
                 [("in", "fc"), ("fc", "iwta"), ("iwta", "out")], dt=0.1)


def _g_li(rng):
    return Graph({"in": Input(4), "fc": Affine(_weights(rng, (2, 4)), _weights(rng, 2)),
                  "li": LI(2, _decay(rng, 2)), "out": Output(2)},
                 [("in", "fc"), ("fc", "li"), ("li", "out")], dt=0.02)


def _g_threshold(rng):
    return Graph({"in": Input(4), "fc": Affine(_weights(rng, (4, 4)), _weights(rng, 4)),
                  "thr": Threshold(4, rng.normal(0, 1, 4).astype(np.float32)), "out": Output(4)},
                 [("in", "fc"), ("fc", "thr"), ("thr", "out")], dt=0.001)


def _g_encoder(rng):
    enc = SpikeEncoder(3, 4, _weights(rng, (3, 4)), _weights(rng, (3, 4)),
                       _decay(rng, 12), _thr(rng, 12), reset="zero")
    return Graph({"in": Input(3), "enc": enc,
                  "ro": Affine(_weights(rng, (2, 12)), _weights(rng, 2)), "out": Output(2)},
                 [("in", "enc"), ("enc", "ro"), ("ro", "out")], dt=0.001)


GRAPHS = {"Input": _g_input, "Output": _g_output, "Affine": _g_affine, "Linear": _g_linear,
          "GroupedLinear": _g_grouped,
          "LIF": _g_lif, "CubaLIF": _g_cuba, "AdaptiveLIF": _g_adaptive, "LI": _g_li, "Threshold": _g_threshold,
          "SpikeEncoder": _g_encoder}


def test_every_node_type_has_a_round_trip_graph():
    assert set(GRAPHS) == set(NODE_TYPES), "add a round-trip graph for each new node type"


@pytest.mark.parametrize("kind", sorted(NODE_TYPES))
def test_round_trip_is_lossless_for_every_node_type(tmp_path, kind):
    graph = GRAPHS[kind](np.random.default_rng(sorted(NODE_TYPES).index(kind) + 100))
    assert any(type(n) is NODE_TYPES[kind] for n in graph.nodes.values())
    metadata = {"name": f"rt-{kind}", "task": "round trip", "classes": [f"c{i}" for i in range(3)],
                "channels": ["ax", "ay", "az"], "nested": {"k": [1, 2.5, None, True, "ü"]}}
    model = edgesnn.Model(graph, metadata=metadata)
    path = tmp_path / f"{kind}.esnn"
    written = edgesnn.save(model, path)
    assert written == path.stat().st_size
    loaded = edgesnn.load_model(path)
    assert loaded.quantization is None
    _assert_same_model(model, loaded)
    # saving the loaded model reproduces the file byte for byte
    assert to_bytes(loaded) == path.read_bytes()
    # and the comparison is not vacuous: another seed gives an unequal graph
    assert loaded.graph != GRAPHS[kind](np.random.default_rng(7))


def test_recurrent_edges_and_dt_survive(tmp_path):
    model = edgesnn.Model(_g_lif(np.random.default_rng(3)))
    edgesnn.save(model, tmp_path / "m.esnn")
    loaded = edgesnn.load_model(tmp_path / "m.esnn").graph
    assert loaded.recurrent == [("lif", "rec")] and loaded.dt == 0.01
    assert loaded.predecessors("rec") == [("lif", True)]


# ---------------------------------------------------------------------- quantized model

def test_quantized_model_round_trip(tmp_path):
    rng = np.random.default_rng(42)
    metadata = {"name": "mixed", "task": "test", "classes": ["left", "right"],
                "channels": ["gx", "gy", "gz"], "seed": 42}
    float_model = edgesnn.Model(mixed_graph(seed=42), metadata=metadata)
    calib = rng.normal(0, 1, (3, 40, 3)).astype(np.float32)
    model = edgesnn.quantize(float_model, calib)
    q = model.quantization
    assert q is not None and q.scales and q.error and q.calibration == {"sequences": 3, "steps": 120}

    edgesnn.save(model, tmp_path / "q.esnn")
    loaded = edgesnn.load_model(tmp_path / "q.esnn")
    _assert_same_model(model, loaded)
    lq = loaded.quantization
    assert lq.scales == q.scales  # a mapping: the file sorts its keys
    assert all(type(v) is float for v in lq.scales.values())
    assert lq.error == q.error
    assert lq.calibration == q.calibration
    assert loaded.metadata == metadata
    assert loaded.metadata["classes"] == ["left", "right"]
    assert loaded.metadata["channels"] == ["gx", "gy", "gz"]

    xs = rng.normal(0, 1, (2, 50, 3)).astype(np.float32)
    for backend in ("numpy-int", "numpy-float"):
        before = edgesnn.Runtime(model, backend).run(xs)
        after = edgesnn.Runtime(loaded, backend).run(xs)
        assert np.array_equal(before, after), backend
    # the integer core too, not only the dequantized outputs
    p0 = edgesnn.compile_graph(model.graph, model.quantization)
    p1 = edgesnn.compile_graph(loaded.graph, loaded.quantization)
    for a, b in zip(p0.ops, p1.ops):
        assert a.params.keys() == b.params.keys()
        assert all(np.array_equal(a.params[k], b.params[k])
                   and a.params[k].dtype == b.params[k].dtype for k in a.params)


# ---------------------------------------------------------------------------- bad files

@pytest.fixture
def small_file() -> bytes:
    rng = np.random.default_rng(5)
    return to_bytes(edgesnn.Model(_g_lif(rng), metadata={"name": "small"}))


def _load_error(tmp_path, data: bytes, name: str = "bad.esnn") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as info:
        edgesnn.load_model(path)
    msg = str(info.value)
    assert "\n" not in msg, "errors are one line"
    assert str(path) in msg, "errors name the file"
    return msg.replace(str(path), "<path>")  # match the words, not the test's directory name


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        edgesnn.load_model(tmp_path / "nope.esnn")


def test_directory(tmp_path):
    (tmp_path / "dir.esnn").mkdir()
    with pytest.raises(ModelFileError, match="is a directory"):
        edgesnn.load_model(tmp_path / "dir.esnn")


def test_empty_file_says_empty_or_truncated(tmp_path):
    # A zero-byte file (an interrupted copy or download) is an edgesnn model cut to
    # nothing; "bad magic bytes" misdescribes a file that has no bytes at all.
    msg = _load_error(tmp_path, b"")
    assert "empty" in msg or "truncated" in msg or "0 bytes" in msg, msg


def test_truncations(tmp_path, small_file):
    _, _, header_len = _PREFIX.unpack_from(small_file)
    arrays_start = -(-(_PREFIX.size + header_len) // 16) * 16
    assert arrays_start + 64 < len(small_file) - _DIGEST  # the cut points below are distinct
    cuts = {
        "one byte": 1,
        "magic only": len(MAGIC),
        "mid prefix": _PREFIX.size - 3,
        "mid header": _PREFIX.size + header_len // 2,
        "end of header": _PREFIX.size + header_len,
        "mid arrays": arrays_start + 40,
        "no checksum": len(small_file) - _DIGEST,
        "half checksum": len(small_file) - _DIGEST // 2,
        "missing last byte": len(small_file) - 1,
    }
    for what, cut in cuts.items():
        msg = _load_error(tmp_path, small_file[:cut])
        assert "truncated" in msg or "corrupt" in msg, (what, msg)


@pytest.mark.parametrize("where", ["version", "header length", "header", "arrays", "checksum"])
def test_bit_flip_at_chosen_offsets(tmp_path, small_file, where):
    _, _, header_len = _PREFIX.unpack_from(small_file)
    offset = {"version": 8, "header length": 12, "header": _PREFIX.size + header_len // 3,
              "arrays": len(small_file) - _DIGEST - 7, "checksum": len(small_file) - 5}[where]
    data = bytearray(small_file)
    data[offset] ^= 0x01
    msg = _load_error(tmp_path, bytes(data))
    if where in ("header", "arrays", "checksum"):
        assert "corrupt" in msg and "checksum" in msg, msg


def test_every_single_bit_flip_is_detected(small_file):
    """No single-bit corruption anywhere in the file loads as a (wrong) model."""
    for i in range(len(small_file)):
        for bit in range(8):
            data = bytearray(small_file)
            data[i] ^= 1 << bit
            with pytest.raises(ModelFileError):
                from_bytes(bytes(data))


def test_text_mode_transfer_is_detected(tmp_path, small_file):
    # CRLF -> LF translation breaks the magic, as PNG's does
    assert b"\r\n" in small_file[:8]
    msg = _load_error(tmp_path, small_file.replace(b"\r\n", b"\n"))
    assert "not an edgesnn model file" in msg


@pytest.mark.parametrize("kind", ["png", "npz", "zip", "text", "json", "esnn-header-as-text"])
def test_foreign_files(tmp_path, kind):
    if kind == "png":
        data = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(100)
    elif kind == "npz":
        np.savez(tmp_path / "a.npz", x=np.zeros((3, 4)))
        data = (tmp_path / "a.npz").read_bytes()
    elif kind == "zip":
        with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
            z.writestr("model.json", "{}")
        data = (tmp_path / "a.zip").read_bytes()
    elif kind == "text":
        data = b"this is a plain text file\nwith two lines\n" * 5
    elif kind == "json":
        data = json.dumps({"graph": {"nodes": []}}).encode()
    else:
        data = b"ESN model version 1\n" + bytes(100)
    msg = _load_error(tmp_path, data)
    assert "not an edgesnn model file" in msg, msg


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 7, 2**32 - 1])
def test_newer_format_version_asks_to_upgrade(tmp_path, small_file, version):
    body = bytearray(small_file[:-_DIGEST])
    struct.pack_into("<I", body, 8, version)
    data = bytes(body) + hashlib.sha256(bytes(body)).digest()
    msg = _load_error(tmp_path, data)
    assert "upgrade" in msg and f"v{version}" in msg, msg


def test_version_zero_is_invalid(tmp_path, small_file):
    body = bytearray(small_file[:-_DIGEST])
    struct.pack_into("<I", body, 8, 0)
    msg = _load_error(tmp_path, bytes(body) + hashlib.sha256(bytes(body)).digest())
    assert "version" in msg


def test_rebuild_helper_round_trips(small_file):
    # the hand-built files below are only meaningful if the helper writes valid files
    header, tail = _split(small_file)
    assert from_bytes(_rebuild(header, tail)).graph == from_bytes(small_file).graph


@pytest.mark.parametrize("blob", [
    b"{not json",
    b'{"graph": ',
    b"\xff\xfe\x00 not utf-8",
    b"[1, 2, 3]",
    b'"a string"',
    b"null",
    b"{}",
    b'{"arrays": [], "graph": {}, "quantization": null, "metadata": {}}',
    b'{"arrays": [], "graph": {"nodes": 3, "edges": [], "recurrent": [], "dt": null}, '
    b'"quantization": null, "metadata": {}}',
], ids=["broken", "cut", "not-utf8", "list", "string", "null", "empty-object", "no-nodes",
        "nodes-not-list"])
def test_malformed_header_with_valid_checksum(tmp_path, blob):
    msg = _load_error(tmp_path, _rebuild(blob))
    assert "malformed" in msg or "invalid" in msg, msg


def _mutated(small_file: bytes, mutate) -> bytes:
    header, tail = _split(small_file)
    mutate(header)
    return _rebuild(header, tail)


def test_unknown_node_type(tmp_path, small_file):
    def mutate(h):
        h["graph"]["nodes"][1]["type"] = "Conv2d"
    msg = _load_error(tmp_path, _mutated(small_file, mutate))
    assert "unknown node type" in msg and "Conv2d" in msg, msg


@pytest.mark.parametrize("case", ["unknown field", "missing field", "duplicate node",
                                  "edge to unknown node", "bad dtype", "array outside file",
                                  "array index out of range", "shape mismatch", "bad beta",
                                  "bad dt", "scales not a dict"])
def test_structurally_invalid_headers(tmp_path, small_file, case):
    def mutate(h):
        nodes, table = h["graph"]["nodes"], h["arrays"]
        lif = next(n for n in nodes if n["type"] == "LIF")
        if case == "unknown field":
            lif["tau"] = 3
        elif case == "missing field":
            del lif["threshold"]
        elif case == "duplicate node":
            nodes.append(dict(nodes[0]))
        elif case == "edge to unknown node":
            h["graph"]["edges"].append(["in", "ghost"])
        elif case == "bad dtype":
            table[0]["dtype"] = "|O"
        elif case == "array outside file":
            table[-1]["offset"] = 10**6
        elif case == "array index out of range":
            lif["beta"] = {"array": 99}
        elif case == "shape mismatch":
            table[lif["beta"]["array"]]["shape"] = [2, 3]
        elif case == "bad beta":  # a value the IR rejects, read from the array bytes
            lif["beta"] = lif["threshold"]  # thresholds are up to 2 > 1
        elif case == "bad dt":
            h["graph"]["dt"] = -1
        elif case == "scales not a dict":
            h["quantization"] = {"scales": [1, 2], "error": {}, "calibration": {}}
    msg = _load_error(tmp_path, _mutated(small_file, mutate))
    assert "malformed" in msg or "invalid" in msg, (case, msg)


# -------------------------------------------------------------------- saving bad models

@pytest.mark.parametrize("value", [np.arange(3), float("nan"), float("inf"), object(),
                                   {"k": np.float32(1.5)}, {1: "a", "b": 2}],
                         ids=["ndarray", "nan", "inf", "object", "numpy-scalar", "mixed-keys"])
def test_non_json_metadata_is_refused_on_save(tmp_path, value):
    model = edgesnn.Model(_g_linear(np.random.default_rng(0)), metadata={"name": "x", "v": value})
    path = tmp_path / "m.esnn"
    with pytest.raises(ModelFileError, match="JSON"):
        edgesnn.save(model, path)
    assert not path.exists(), "no half-written file is left behind"


def test_graph_with_numpy_scalar_dt_saves(tmp_path):
    # Graph accepts dt as any positive number (np.float32 included): a valid graph
    # must save, and must not be blamed on "metadata".
    rng = np.random.default_rng(1)
    graph = Graph({"in": Input(2), "lin": Linear(_weights(rng, (2, 2))), "out": Output(2)},
                  [("in", "lin"), ("lin", "out")], dt=np.float32(0.01))
    edgesnn.save(edgesnn.Model(graph), tmp_path / "dt.esnn")
    assert edgesnn.load_model(tmp_path / "dt.esnn").graph.dt == pytest.approx(0.01)
