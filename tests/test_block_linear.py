"""BlockLinear (one weight block per input slice) and the exact float64 path of the
integer matmul kernels."""

import numpy as np
import pytest

import edgesnn
from edgesnn.compile import compile_graph
from edgesnn.compile.kernels import _int_matmul
from edgesnn.errors import GraphError
from edgesnn.ir import Affine, BlockLinear, Graph, Input, Output, Threshold


def _block_diagonal(weight: np.ndarray) -> np.ndarray:
    blocks, out, inp = weight.shape
    dense = np.zeros((blocks * out, blocks * inp), np.float32)
    for b in range(blocks):
        dense[b * out:(b + 1) * out, b * inp:(b + 1) * inp] = weight[b]
    return dense


def _graphs(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (3, 4, 5)).astype(np.float32)
    feat = Affine(rng.normal(0, 1, (15, 6)), rng.normal(0, 0.3, 15))
    tail = [("in", "f"), ("f", "s"), ("s", "p"), ("p", "out")]
    block = Graph({"in": Input(6), "f": feat, "s": Threshold(15, 0.0), "p": BlockLinear(w),
                   "out": Output(12)}, tail)
    dense = Graph({"in": Input(6), "f": feat, "s": Threshold(15, 0.0),
                   "p": Affine(_block_diagonal(w), np.zeros(12)), "out": Output(12)}, tail)
    return block, dense


def test_block_linear_equals_the_dense_block_diagonal_matrix():
    block, dense = _graphs()
    x = np.random.default_rng(1).normal(0, 1, (50, 6)).astype(np.float32)
    pb, pd = compile_graph(block), compile_graph(dense)
    yb, _ = pb.step(pb.init_state(50), x)
    yd, _ = pd.step(pd.init_state(50), x)
    np.testing.assert_allclose(yb, yd, rtol=1e-6, atol=1e-6)
    assert pb.memory().flash < pd.memory().flash  # the zeros are not stored


def test_quantized_block_linear_matches_the_dense_form_bit_for_bit():
    block, dense = _graphs()
    calib = np.random.default_rng(2).normal(0, 1, (40, 1, 6)).astype(np.float32)
    qb = edgesnn.quantize(edgesnn.Model(block), calib)
    # the same scales for both (node names match); only the weight layout differs
    pb = compile_graph(qb.graph, qb.quantization)
    pd = compile_graph(dense, qb.quantization)
    x = np.random.default_rng(3).normal(0, 1, (64, 6)).astype(np.float32)
    yb, _ = pb.step(pb.init_state(64), x)
    yd, _ = pd.step(pd.init_state(64), x)
    # per-channel int8 scales are the same rows either way; zeros quantize to zero
    np.testing.assert_array_equal(yb, yd)


def test_block_linear_rejects_bad_weights():
    with pytest.raises(GraphError, match="3-D"):
        BlockLinear(np.ones((4, 5)))
    with pytest.raises(GraphError, match="NaN"):
        BlockLinear(np.full((1, 2, 2), np.nan))


def test_integer_matmul_float64_path_is_exact_and_falls_back_when_it_could_round():
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (300, 7)).astype(np.int8)
    wt = w.T
    op = type("Op", (), {})()
    op.cache = {"weight_t64": wt.astype(np.int64), "weight_t_f64": wt.astype(np.float64),
                "weight_bound": float(np.abs(wt.astype(np.int64)).sum(axis=-2).max())}
    small = rng.integers(-2**15, 2**15, (9, 7)).astype(np.int64)
    np.testing.assert_array_equal(_int_matmul(small, op), small @ wt.astype(np.int64))
    # inputs near 2**46: products exceed 2**53, so the int64 path must be taken
    huge = rng.integers(2**46, 2**47, (9, 7)).astype(np.int64)
    np.testing.assert_array_equal(_int_matmul(huge, op), huge @ wt.astype(np.int64))
