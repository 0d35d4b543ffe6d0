"""Property tests of the fixed-point arithmetic and of the neuron kernels.

The integer reference below is written with Python ints (unbounded), so any int64
wrap or missing saturation in the package shows up as a mismatch. The float
reference re-implements the equations of ``edgesnn.ir.nodes`` step by step in float32
scalars, in the order the equations are written.
"""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from edgesnn.compile import FIXED, FLOAT32, Quantization, compile_graph
from edgesnn.compile.fixed import (DECAY_SHIFT, INT16_MAX, INT16_MIN, INT32_MAX, INT32_MIN,
                                   MAX_SHIFT, mul_q, quantize_decay, quantize_multiplier,
                                   round_shift)
from edgesnn.errors import QuantizationError
from edgesnn.ir import LI, LIF, CubaLIF, Graph, Input, Linear, Output, SpikeEncoder, Threshold

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

DET = settings(max_examples=100, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow])
DET_SLOW = settings(DET, max_examples=40)

int32s = st.integers(INT32_MIN, INT32_MAX)
unit = st.floats(0.0, 1.0, allow_nan=False, width=32)


# ------------------------------------------------------------------ Python-int model


def py_round_shift(v: int, s: int) -> int:
    return (v + 2 ** (s - 1)) // 2**s  # floor division: ties go toward +inf


def clamp32(v: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, v))


def py_decay(v: int, q: int) -> int:
    return clamp32(py_round_shift(v * q, DECAY_SHIFT))


# ------------------------------------------------------------------------ round_shift


@DET
@given(v=st.integers(-(2**62), 2**62), s=st.integers(1, MAX_SHIFT))
@example(v=-1, s=1)           # -0.5 → 0 (tie toward +inf)
@example(v=1, s=1)            # +0.5 → 1
@example(v=-3, s=1)           # -1.5 → -1
@example(v=-(2**62), s=MAX_SHIFT)
@example(v=2**62, s=MAX_SHIFT)
def test_round_shift_matches_python_floor_on_the_range_mul_q_produces(v, s):
    # |int32 · int32| ≤ 2**62: every value mul_q and the kernels ever hand to round_shift
    got = round_shift(np.array([v], dtype=np.int64), s)
    assert got.dtype == np.int64
    assert int(got[0]) == py_round_shift(v, s)


@DET
@given(v=st.integers(INT64_MIN, INT64_MAX), s=st.integers(1, MAX_SHIFT))
@example(v=INT64_MAX, s=1)    # exposes the int64 wrap of v + 2**(s-1)
def test_round_shift_matches_python_floor_on_the_whole_int64_range(v, s):
    # The documented contract is "divide int64 v by 2**shift"; the true result always
    # fits int64 for s ≥ 1, so the function must not wrap on the way there.
    got = round_shift(np.array([v], dtype=np.int64), s)
    assert int(got[0]) == py_round_shift(v, s)


@DET
@given(vs=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=8), data=st.data())
def test_round_shift_is_elementwise_with_per_element_shifts(vs, data):
    shifts = data.draw(st.lists(st.integers(1, MAX_SHIFT), min_size=len(vs), max_size=len(vs)))
    got = round_shift(np.array(vs, dtype=np.int64), np.array(shifts))
    assert [int(g) for g in got] == [py_round_shift(v, s) for v, s in zip(vs, shifts)]


# ----------------------------------------------------------------- quantize_multiplier

magnitudes = st.builds(lambda e, f: f * 10.0**e, st.integers(-12, 8),
                       st.floats(1.0, 10.0, allow_nan=False, exclude_max=True))


@DET
@given(r=st.one_of(magnitudes, st.floats(1e-12, 1e9, allow_nan=False)))
@example(r=1.0)
@example(r=0.5)
@example(r=2.0**-31)
@example(r=2.0**-32)   # shift would be 63 → reduced form
@example(r=1e9)
@example(r=1e-12)
def test_quantize_multiplier_is_normalised_and_accurate(r):
    m, sh = quantize_multiplier(r)
    assert m.shape == (1,) and sh.shape == (1,)
    assert m.dtype == np.int32 and sh.dtype == np.int8
    m, sh = int(m[0]), int(sh[0])
    assert 1 <= sh <= MAX_SHIFT
    approx = m * 2.0**-sh
    if sh < MAX_SHIFT:
        assert 2**30 <= m < 2**31
        assert abs(approx - r) / r <= 2.0**-30
        assert abs(approx - r) <= r * 2.0**-31 * (1 + 1e-12)  # the docstring's bound
    else:
        # reduced form: the nearest multiple of 2**-62; the 31-bit rounding before the
        # reduction adds at most 2**-64, so the error stays ≤ 2**-63 + 2**-64
        assert 0 <= m < 2**31
        assert abs(approx - r) <= 2.0**-63 + 2.0**-64
        if r >= 2.0**-32:
            assert 2**30 <= m < 2**31
            assert abs(approx - r) / r <= 2.0**-30


@DET
@given(rs=st.lists(st.one_of(st.just(0.0), magnitudes), min_size=1, max_size=10))
def test_quantize_multiplier_vectorised_equals_scalar_calls(rs):
    m, sh = quantize_multiplier(np.array(rs))
    for i, r in enumerate(rs):
        mi, si = quantize_multiplier(r)
        assert (int(m[i]), int(sh[i])) == (int(mi[0]), int(si[0]))


def test_quantize_multiplier_zero_maps_to_zero_multiplier():
    m, sh = quantize_multiplier(np.array([0.0, 1.0, -0.0]))
    assert int(m[0]) == 0 and int(m[2]) == 0
    assert int(m[1]) == 2**30 and int(sh[1]) == 30
    v = np.array([INT32_MIN, -5, 0, 7, INT32_MAX])
    assert np.array_equal(mul_q(v, m[0], sh[0]), np.zeros(5))


@pytest.mark.parametrize("bad", [-1.0, -1e-30, -np.inf, np.inf, np.nan])
def test_quantize_multiplier_rejects_negative_and_non_finite(bad):
    with pytest.raises(QuantizationError, match="not a positive finite"):
        quantize_multiplier(bad)
    with pytest.raises(QuantizationError):
        quantize_multiplier(np.array([1.0, bad, 2.0]))


@DET
@given(r=st.one_of(st.floats(2.0**30, 1e300, allow_nan=False, allow_infinity=False),
                   st.just(2.0**30), st.just(2.0**31)))
def test_quantize_multiplier_rejects_factors_that_need_a_non_positive_shift(r):
    with pytest.raises(QuantizationError, match="too large"):
        quantize_multiplier(r)


# ----------------------------------------------------------------------------- mul_q


@DET
@given(v=int32s, m=int32s, s=st.integers(1, MAX_SHIFT))
@example(v=INT32_MIN, m=INT32_MIN, s=1)
@example(v=INT32_MAX, m=INT32_MAX, s=1)
@example(v=INT32_MIN, m=INT32_MAX, s=1)
@example(v=INT32_MAX, m=2**30, s=30)
def test_mul_q_saturates_instead_of_wrapping(v, m, s):
    got = mul_q(np.array([v], dtype=np.int32), m, s)
    assert INT32_MIN <= int(got[0]) <= INT32_MAX
    assert int(got[0]) == clamp32(py_round_shift(v * m, s))


@DET
@given(vs=st.lists(int32s, min_size=1, max_size=16), r=magnitudes)
def test_mul_q_with_quantized_multiplier_approximates_the_real_product(vs, r):
    assume(r < 2.0**29)
    m, sh = quantize_multiplier(r)
    got = mul_q(np.array(vs, dtype=np.int32), m, sh)
    for v, g in zip(vs, got):
        exact = v * r
        # rounding (≤ 0.5) plus the multiplier's relative error (≤ 2**-31 · |v r|) or, in
        # the reduced form, its absolute error (≤ 2**-62 · |v|); saturated at the rails
        bound = 0.5 + abs(exact) * 2.0**-30 + abs(v) * 2.0**-61 + 1e-9
        assert INT32_MIN <= int(g) <= INT32_MAX
        assert abs(int(g) - min(max(exact, INT32_MIN), INT32_MAX)) <= bound
        if abs(exact) > 2 * INT32_MAX:
            assert int(g) == (INT32_MAX if exact > 0 else INT32_MIN)


# ---------------------------------------------------------------------------- decays


@DET
@given(v=int32s, beta=unit)
@example(v=INT32_MIN, beta=1.0)
@example(v=INT32_MAX, beta=1.0)
@example(v=-1, beta=0.5)
@example(v=1, beta=0.5)
def test_decay_never_increases_magnitude(v, beta):
    q = quantize_decay(np.array([beta], dtype=np.float32))
    assert q.dtype == np.int32 and 0 <= int(q[0]) <= 2**30
    got = int(mul_q(np.array([v], dtype=np.int32), q, DECAY_SHIFT)[0])
    assert abs(got) <= abs(v)
    assert got == 0 or (got > 0) == (v > 0)  # never flips the sign
    assert got == py_decay(v, int(q[0]))


@DET
@given(a=int32s, b=int32s, beta=unit)
def test_decay_is_monotone_in_v(a, b, beta):
    lo, hi = min(a, b), max(a, b)
    q = quantize_decay(np.array([beta], dtype=np.float32))
    out = mul_q(np.array([lo, hi], dtype=np.int32), q, DECAY_SHIFT)
    assert int(out[0]) <= int(out[1])


@DET
@given(vs=st.lists(int32s, min_size=1, max_size=32))
def test_decay_one_is_identity_and_zero_is_zero(vs):
    v = np.array(vs, dtype=np.int32)
    one, zero = quantize_decay(np.array([1.0, 0.0], dtype=np.float32))
    assert int(one) == 2**30 and int(zero) == 0
    assert np.array_equal(mul_q(v, one, DECAY_SHIFT), v)
    assert np.array_equal(mul_q(v, zero, DECAY_SHIFT), np.zeros_like(v))


# --------------------------------------------------------------------- tiny programs

KINDS = ("lif", "cuba", "li")


def neuron(kind: str, n: int, beta, threshold, alpha=None, reset="subtract"):
    if kind == "lif":
        return LIF(n, beta, threshold, reset)
    if kind == "cuba":
        return CubaLIF(n, alpha, beta, threshold, reset)
    return LI(n, beta)


def tiny_graph(node, n: int, weight=None) -> Graph:
    """Input(n) → [Linear(weight)] → node → Output(n)."""
    nodes = {"in": Input(n)}
    edges = [("in", "n")]
    if weight is not None:
        nodes["fc"] = Linear(weight)
        edges = [("in", "fc"), ("fc", "n")]
    nodes.update({"n": node, "out": Output(node.out_size)})
    return Graph(nodes, edges + [("n", "out")])


def fixed_program(graph: Graph, scale: float, in_scale: float | None = None):
    scales = {"in": scale if in_scale is None else in_scale, "n": scale}
    if "fc" in graph.nodes:
        scales["fc"] = scale  # a connection feeding a neuron requantizes into its scale
    program = compile_graph(graph, Quantization(scales=scales))
    assert program.numerics == FIXED
    return program


def op(program, name="n"):
    return next(o for o in program.ops if o.name == name)


def state_of(state, key):
    return [int(v) for v in state[key][0]]


neuron_params = st.fixed_dictionaries({
    "kind": st.sampled_from(KINDS),
    "reset": st.sampled_from(["subtract", "zero"]),
    "n": st.integers(1, 4),
    "scale": st.sampled_from([2.0**-14, 2.0**-10, 1e-3, 0.0371, 0.5]),
    "seed": st.integers(0, 2**32 - 1),
})


def draw_node(p, rng):
    n = p["n"]
    beta = rng.uniform(0, 1, n)
    beta[rng.random(n) < 0.2] = 1.0
    beta[rng.random(n) < 0.1] = 0.0
    alpha = rng.uniform(0, 1, n)
    thr = rng.uniform(0.01, 4.0, n)
    return neuron(p["kind"], n, beta, thr, alpha, p["reset"])


@DET_SLOW
@given(p=neuron_params, steps=st.integers(1, 30), amp=st.sampled_from([50, 3000, INT16_MAX]))
def test_integer_kernels_match_a_python_int_model_bit_for_bit(p, steps, amp):
    rng = np.random.default_rng(p["seed"])
    node = draw_node(p, rng)
    program = fixed_program(tiny_graph(node, p["n"]), p["scale"])
    prm = op(program).params
    beta_q = [int(b) for b in prm["beta"]]
    assert beta_q == [int(round(float(b) * 2**30)) for b in node.beta]
    if p["kind"] != "li":
        thr_q = [int(t) for t in prm["threshold"]]
        assert thr_q == [max(1, int(np.round(float(t) / p["scale"]))) for t in node.threshold]
    if p["kind"] == "cuba":
        alpha_q = [int(a) for a in prm["alpha"]]
    xs = rng.integers(-amp, amp + 1, (steps, p["n"]))
    state = program.init_state(1)
    v = [0] * p["n"]
    j = [0] * p["n"]
    for x in xs:
        y, state = program.step_int(state, x[None])
        expect_y = []
        for k in range(p["n"]):
            cur = int(x[k])
            if p["kind"] == "li":
                v[k] = clamp32(py_decay(v[k], beta_q[k]) + cur)
                expect_y.append(v[k])
                continue
            if p["kind"] == "cuba":
                j[k] = clamp32(py_decay(j[k], alpha_q[k]) + cur)
                cur = j[k]
            fired = v[k] > thr_q[k]
            if p["reset"] == "subtract":
                v[k] = clamp32(py_decay(v[k], beta_q[k]) + cur - fired * thr_q[k])
            else:
                v[k] = 0 if fired else clamp32(py_decay(v[k], beta_q[k]) + cur)
            expect_y.append(int(v[k] > thr_q[k]))
        assert state_of(state, "n.v") == v
        if p["kind"] == "cuba":
            assert state_of(state, "n.i") == j
        assert [int(a) for a in y[0]] == expect_y


@DET_SLOW
@given(kind=st.sampled_from(["lif", "cuba"]), reset=st.sampled_from(["subtract", "zero"]),
       beta=unit, alpha=unit, thr_q=st.integers(1, 20000), seed=st.integers(0, 2**32 - 1))
def test_integer_reset_and_strict_threshold(kind, reset, beta, alpha, thr_q, seed):
    # scale 1: the quantized threshold is the real one, inputs are currents directly
    node = neuron(kind, 1, beta, float(thr_q), alpha, reset)
    program = fixed_program(tiny_graph(node, 1), 1.0)
    prm = op(program).params
    assert int(prm["threshold"][0]) == thr_q
    bq = int(prm["beta"][0])
    aq = int(prm["alpha"][0]) if kind == "cuba" else 0
    rng = np.random.default_rng(seed)
    # inputs around the threshold, including exactly ϑ_q and ϑ_q + 1
    xs = rng.choice([0, thr_q, thr_q + 1, thr_q - 1, 2 * thr_q + 3, -thr_q], 40)
    xs[0] = 2 * thr_q + 3  # fires at step 0, so step 1 exercises the reset
    state = program.init_state(1)
    fired_seen = 0
    for x in xs:
        v_prev = int(state["n.v"][0, 0])
        j_prev = int(state["n.i"][0, 0]) if kind == "cuba" else 0
        y, state = program.step_int(state, np.array([[x]]))
        cur = clamp32(py_decay(j_prev, aq) + int(x)) if kind == "cuba" else int(x)
        v = int(state["n.v"][0, 0])
        if v_prev > thr_q:
            fired_seen += 1
            if reset == "subtract":
                assert v == clamp32(py_decay(v_prev, bq) + cur - thr_q)
            else:
                assert v == 0
        else:
            assert v == clamp32(py_decay(v_prev, bq) + cur)
        assert int(y[0, 0]) == int(v > thr_q)  # strict: v == ϑ_q is no spike
    assert fired_seen >= 1


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("numerics", [FLOAT32, FIXED])
def test_spike_needs_strict_excess_of_threshold(reset, numerics):
    # β = 0: the membrane equals the input; ϑ = 100 exactly at scale 1
    node = LIF(3, 0.0, 100.0, reset)
    g = tiny_graph(node, 3)
    program = compile_graph(g) if numerics == FLOAT32 else fixed_program(g, 1.0)
    state = program.init_state(1)
    y, state = program.step(state, np.array([99.0, 100.0, 101.0]))
    assert np.array_equal(y, [0, 0, 1])
    # the neuron at exactly ϑ was not reset; the one above ϑ was
    y, state = program.step(state, np.array([0.0, 0.0, 0.0]))
    expect_v = [0, 0, -100] if reset == "subtract" else [0, 0, 0]
    assert np.array_equal(state["n.v"][0], expect_v)


# ------------------------------------------------------------------- no overflow wrap


def drive_programs(kind, reset, beta, alpha, via_linear):
    """A fixed program whose per-step input current saturates int32."""
    n = 2
    node = neuron(kind, n, beta, 0.25, alpha, reset)
    if via_linear:
        g = tiny_graph(node, n, weight=np.full((n, n), 100.0))
        return g, fixed_program(g, 2.0**-14, in_scale=1.0)
    g = tiny_graph(node, n)
    return g, fixed_program(g, 2.0**-20, in_scale=1.0)  # input rescaled × 2**20


@DET_SLOW
@given(kind=st.sampled_from(KINDS), reset=st.sampled_from(["subtract", "zero"]),
       beta=unit, alpha=unit, sign=st.sampled_from([1, -1]), via_linear=st.booleans(),
       steps=st.integers(50, 200))
def test_integer_state_never_wraps_under_extreme_drive(kind, reset, beta, alpha, sign,
                                                       via_linear, steps):
    g, program = drive_programs(kind, reset, beta, alpha, via_linear)
    x = np.full((1, 2), INT16_MAX if sign > 0 else INT16_MIN, dtype=np.int64)
    state = program.init_state(1)
    for t in range(steps):
        y, state = program.step_int(state, x)
        for key, buf in state.items():
            assert buf.dtype == np.int32, key
            wide = buf.astype(np.int64)
            assert np.all((wide >= INT32_MIN) & (wide <= INT32_MAX))
            if sign > 0:
                assert np.all(wide >= 0), (t, key, buf)  # a wrap would flip the sign
            else:
                assert np.all(wide <= 0), (t, key, buf)
        if kind == "li":
            assert np.array_equal(y[0], state["n.v"][0])
        else:
            assert np.array_equal(y[0], (state["n.v"][0] > op(program).params["threshold"])
                                  .astype(np.int32))
            if sign < 0:
                assert not y.any()


@pytest.mark.parametrize("via_linear", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_integer_state_sits_on_the_rail_under_saturating_drive(kind, via_linear):
    # β = 1: every step adds a saturated current; the state must clip at ±2**31, fire
    # every step when positive (subtract reset keeps it at the rail) and never when negative
    for sign, rail in ((1, INT32_MAX), (-1, INT32_MIN)):
        _, program = drive_programs(kind, "subtract", 1.0, 0.5, via_linear)
        x = np.full((1, 2), INT16_MAX if sign > 0 else INT16_MIN)
        state = program.init_state(1)
        for _ in range(10):
            y, state = program.step_int(state, x)
            assert np.all(state["n.v"] == rail)
            if kind == "cuba":
                assert np.all(state["n.i"] == rail)
            if kind == "li":
                assert np.all(y == rail)
            else:
                assert np.all(y == (1 if sign > 0 else 0))


@pytest.mark.parametrize("via_linear", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_float_input_beyond_int16_is_clipped_not_wrapped(kind, via_linear):
    _, program = drive_programs(kind, "subtract", 1.0, 1.0, via_linear)
    state = program.init_state(1)
    for _ in range(20):
        _, state = program.step(state, np.array([1e12, -1e12]))  # quantizes to ±int16 rails
    ref = program.init_state(1)
    for _ in range(20):
        _, ref = program.step_int(ref, np.array([[INT16_MAX, INT16_MIN]]))
    assert all(np.array_equal(state[k], ref[k]) for k in ref)


@DET_SLOW
@given(kind=st.sampled_from(KINDS), reset=st.sampled_from(["subtract", "zero"]),
       beta=unit, alpha=unit, sign=st.sampled_from([1, -1]), via_linear=st.booleans())
def test_float_state_keeps_its_sign_under_extreme_drive(kind, reset, beta, alpha, sign,
                                                        via_linear):
    n = 2
    node = neuron(kind, n, beta, 0.25, alpha, reset)
    g = tiny_graph(node, n, weight=np.full((n, n), 100.0) if via_linear else None)
    program = compile_graph(g)
    assert program.numerics == FLOAT32
    state = program.init_state(1)
    x = np.full(n, 32767.0 * sign)
    for _ in range(150):
        y, state = program.step(state, x)
        for key, buf in state.items():
            assert buf.dtype == np.float32 and np.all(np.isfinite(buf)), key
            assert np.all(buf >= 0) if sign > 0 else np.all(buf <= 0), (key, buf)
        if kind == "li":
            assert np.array_equal(y, state["n.v"][0])
        else:
            assert np.array_equal(y, (state["n.v"][0] > 0.25).astype(np.float32))


# ----------------------------------------------------- float kernels: reset semantics


@DET_SLOW
@given(p=neuron_params, steps=st.integers(1, 25))
def test_float_reset_semantics_and_spikes(p, steps):
    assume(p["kind"] != "li")
    rng = np.random.default_rng(p["seed"])
    node = draw_node(p, rng)
    program = compile_graph(tiny_graph(node, p["n"]))
    state = program.init_state(1)
    xs = rng.normal(0, 2.0, (steps, p["n"])).astype(np.float32)
    beta, thr = node.beta, node.threshold
    for x in xs:
        v_prev = state["n.v"][0].copy()
        y, state = program.step(state, x)
        cur = x
        if p["kind"] == "cuba":
            cur = state["n.i"][0]
        v = state["n.v"][0]
        plain = (beta * v_prev).astype(np.float32) + cur
        fired = v_prev > thr
        if p["reset"] == "subtract":
            assert np.array_equal(v[fired], (plain - thr)[fired])
        else:
            assert np.array_equal(v[fired], np.zeros(fired.sum(), np.float32))
        assert np.array_equal(v[~fired], plain[~fired])
        assert np.array_equal(y, (v > thr).astype(np.float32))


# ------------------------------------------------------ float program vs the equations


def f32(a):
    return np.float32(a)


def ref_lif(beta, thr, reset, v, cur):
    """Scalar float32 LIF step per the docstring; returns (spike, U)."""
    fired = v > thr
    if reset == "subtract":
        u = f32(f32(beta * v) + cur) - (thr if fired else f32(0))
    else:
        u = f32(0) if fired else f32(f32(beta * v) + cur)
    return f32(u > thr), f32(u)


float_inputs = st.integers(0, 2**32 - 1)


@DET_SLOW
@given(n=st.integers(1, 4), steps=st.integers(1, 25), reset=st.sampled_from(["subtract", "zero"]),
       seed=float_inputs, kind=st.sampled_from(["lif", "cuba", "li", "threshold"]))
def test_float_program_follows_the_equations(n, steps, reset, seed, kind):
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0, 1, n).astype(np.float32)
    beta = rng.uniform(0, 1, n).astype(np.float32)
    thr = rng.uniform(0.1, 2.0, n).astype(np.float32)
    if kind == "threshold":
        thr = rng.uniform(-1.0, 1.0, n).astype(np.float32)  # any real threshold
        node = Threshold(n, thr)
    else:
        node = neuron(kind, n, beta, thr, alpha, reset)
    program = compile_graph(tiny_graph(node, n))
    xs = rng.normal(0, 1.5, (steps, n)).astype(np.float32)
    state = program.init_state(1)
    U = np.zeros(n, np.float32)
    J = np.zeros(n, np.float32)
    for x in xs:
        y, state = program.step(state, x)
        expect = np.zeros(n, np.float32)
        for k in range(n):
            cur = f32(x[k])
            if kind == "threshold":
                expect[k] = f32(cur > thr[k])
                continue
            if kind == "li":
                U[k] = f32(f32(beta[k] * U[k]) + cur)
                expect[k] = U[k]
                continue
            if kind == "cuba":
                J[k] = f32(f32(alpha[k] * J[k]) + cur)
                cur = J[k]
            expect[k], U[k] = ref_lif(beta[k], thr[k], reset, U[k], cur)
        assert y.dtype == np.float32
        assert np.array_equal(y, expect)
        if kind != "threshold":
            assert np.array_equal(state["n.v"][0], U)
        if kind == "cuba":
            assert np.array_equal(state["n.i"][0], J)


@DET_SLOW
@given(channels=st.integers(1, 3), population=st.integers(1, 4), steps=st.integers(1, 20),
       reset=st.sampled_from(["subtract", "zero"]), seed=float_inputs)
def test_float_spike_encoder_follows_the_equations(channels, population, steps, reset, seed):
    rng = np.random.default_rng(seed)
    shape = (channels, population)
    w = rng.normal(0, 1.5, shape).astype(np.float32)
    b = rng.normal(0, 0.3, shape).astype(np.float32)
    beta = rng.uniform(0, 1, shape).astype(np.float32)
    thr = rng.uniform(0.2, 1.5, shape).astype(np.float32)
    node = SpikeEncoder(channels, population, w, b, beta, thr, reset)
    g = Graph({"in": Input(channels), "n": node, "out": Output(channels * population)},
              [("in", "n"), ("n", "out")])
    program = compile_graph(g)
    xs = rng.normal(0, 1.0, (steps, channels)).astype(np.float32)
    state = program.init_state(1)
    U = np.zeros(shape, np.float32)
    for x in xs:
        y, state = program.step(state, x)
        expect = np.zeros(shape, np.float32)
        for c in range(channels):
            for k in range(population):
                cur = f32(f32(w[c, k] * x[c]) + b[c, k])
                expect[c, k], U[c, k] = ref_lif(beta[c, k], thr[c, k], reset, U[c, k], cur)
        assert np.array_equal(y, expect.ravel())  # channel-major: index c·population + k
        assert np.array_equal(state["n.v"][0], U.ravel())


def test_spike_encoder_output_is_channel_major():
    # channel 0 neurons fire on positive input, channel 1 neurons never do
    w = np.array([[1.0, 2.0, 3.0], [-1.0, -1.0, -1.0]])
    node = SpikeEncoder(2, 3, w, 0.0, 0.0, [[0.5, 1.5, 2.5], [0.5, 0.5, 0.5]])
    g = Graph({"in": Input(2), "n": node, "out": Output(6)}, [("in", "n"), ("n", "out")])
    y, _ = compile_graph(g).step(compile_graph(g).init_state(1), np.array([1.0, 1.0]))
    assert np.array_equal(y, [1, 1, 1, 0, 0, 0])
    y, _ = compile_graph(g).step(compile_graph(g).init_state(1), np.array([0.6, 1.0]))
    assert np.array_equal(y, [1, 0, 0, 0, 0, 0])
