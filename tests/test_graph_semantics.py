"""Graph semantics: recurrent delays, validation, execution order, batching, state handling."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgesnn
from edgesnn.compile import FIXED, FLOAT32, Quantization, compile_graph
from edgesnn.compile.fixed import mul_q, saturate32
from edgesnn.errors import GraphError, InputError
from edgesnn.ir import (LI, LIF, Affine, CubaLIF, Graph, Input, Linear, Output, SpikeEncoder,
                        Threshold)

DET = settings(max_examples=30, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow])

NUMERICS = [FLOAT32, FIXED]
S = 2.0**-6  # fixed-point scale of every value node in the hand-built quantizations


def build(graph: Graph, numerics: str, scales: dict | None = None):
    if numerics == FLOAT32:
        return compile_graph(graph)
    if scales is None:
        scales = {n: S for n in graph.nodes if not isinstance(graph.nodes[n], Output)}
    program = compile_graph(graph, Quantization(scales=scales))
    assert program.numerics == FIXED
    return program


def feed(program, state, x):
    """One step with real-valued x for float programs, integer x for fixed ones."""
    x = np.asarray([x], dtype=np.float32 if program.numerics == FLOAT32 else np.int64)
    if program.numerics == FLOAT32:
        return program.step(state, x[0])
    y, state = program.step_int(state, x)
    return y[0], state


def op(program, name):
    return next(o for o in program.ops if o.name == name)


def q_connection(program, name, x_int):
    """The integer output of a (1×1 or n×m) Affine/Linear op, recomputed from its params."""
    o = op(program, name)
    acc = np.asarray(x_int, np.int64) @ o.params["weight"].T.astype(np.int64)
    if "bias" in o.params:
        acc = acc + o.params["bias"]
    return mul_q(saturate32(acc), o.params["multiplier"], o.params["shift"])


def assert_prev_dtypes_follow_layout(program, state):
    for name, width, dtype in program.state_layout():
        assert state[name].dtype == np.dtype(dtype), (name, state[name].dtype, dtype)
        assert state[name].shape[1] == width


# --------------------------------------------------------------- recurrent = one step


def spike_loop(w: float, bias: float | None = None) -> Graph:
    """in → lif; lif ⇢ rec (recurrent) → lif: rec reads last step's spikes."""
    rec = Linear([[w]]) if bias is None else Affine([[w]], [bias])
    return Graph({"in": Input(1), "lif": LIF(1, 0.0, 1.0), "rec": rec, "out": Output(1)},
                 [("in", "lif"), ("rec", "lif"), ("lif", "out")], recurrent=[("lif", "rec")])


def value_loop(w: float, bias: float) -> Graph:
    """in → lif → aff; aff ⇢ lif (recurrent): lif reads last step's Affine output."""
    return Graph({"in": Input(1), "lif": LIF(1, 0.0, 1.0), "aff": Affine([[w]], [bias]),
                  "out": Output(1)},
                 [("in", "lif"), ("lif", "aff"), ("lif", "out")], recurrent=[("aff", "lif")])


W_DYADIC = st.sampled_from([-1.5, -0.75, -0.25, 0.125, 0.5, 0.875, 1.25, 3.0])


@pytest.mark.parametrize("numerics", NUMERICS)
@DET
@given(t_spike=st.integers(0, 6), w=W_DYADIC)
def test_recurrent_spike_contribution_arrives_one_step_later(numerics, t_spike, w):
    program = build(spike_loop(w), numerics)
    if numerics == FLOAT32:
        thr, drive = 1.0, 2.0
        c1 = w  # what one spike contributes through rec
    else:
        thr = int(op(program, "lif").params["threshold"][0])
        assert thr == 64  # ϑ / S
        drive = 2 * thr
        c1 = int(q_connection(program, "rec", [[1]])[0, 0])
        assert c1 == round(w / S)  # int8 weight ±127 and an exact multiplier here
    c0 = 0 if numerics == FLOAT32 else int(q_connection(program, "rec", [[0]])[0, 0])
    assert c0 == 0
    state = program.init_state(1)
    assert np.array_equal(state["lif.prev"], [[0]])
    steps = t_spike + 3
    membranes, spikes = [], []
    for t in range(steps):
        y, state = feed(program, state, [drive if t == t_spike else 0])
        membranes.append(state["lif.v"][0, 0].item())
        spikes.append(int(y[0]))
        # .prev is exactly this step's spike output, in the layout's dtype
        assert np.array_equal(state["lif.prev"], [[spikes[-1]]])
        assert_prev_dtypes_follow_layout(program, state)
    # nothing before the spike; at the spike step no recurrent input yet (not drive + w)
    assert membranes[:t_spike] == [0] * t_spike
    assert membranes[t_spike] == drive and spikes[t_spike] == 1
    # one step later: β = 0, no input, the spike's contribution w and the subtractive reset
    assert membranes[t_spike + 1] == c1 - thr
    assert spikes[t_spike + 1] == int(c1 - thr > thr)


@pytest.mark.parametrize("numerics", NUMERICS)
def test_recurrent_input_is_zero_at_step_zero_and_read_from_prev(numerics):
    # The Affine's bias makes its output non-zero whatever it receives: if the recurrent
    # edge were not delayed (or .prev not zero-initialised) step 0 would see the bias.
    w, b = 0.5, 0.25
    program = build(value_loop(w, b), numerics)
    assert [o.name for o in program.ops][-1] == "out"
    state = program.init_state(1)
    assert np.array_equal(state["aff.prev"], [[0]])
    if numerics == FLOAT32:
        x0, thr = 0.375, 1.0
        aff = lambda s: np.float32(np.float32(s * w) + b)  # noqa: E731
    else:
        x0, thr = 24, 64
        aff = lambda s: int(q_connection(program, "aff", [[s]])[0, 0])  # noqa: E731
        assert aff(0) == round(b / S) and aff(1) == round((w + b) / S)
    y, state = feed(program, state, [x0])
    assert state["lif.v"][0, 0] == x0  # no bias at step 0
    assert state["aff.prev"][0, 0] == aff(0)  # this step's Affine output, kept for t + 1
    y, state = feed(program, state, [0])
    assert state["lif.v"][0, 0] == aff(0)  # β = 0: U_1 = aff_0 exactly
    # spike at step 2, its Affine output reaches the membrane at step 3
    y, state = feed(program, state, [3 * thr])
    u2 = state["lif.v"][0, 0]
    assert u2 == 3 * thr + aff(0) and int(y[0]) == 1
    assert state["aff.prev"][0, 0] == aff(1)
    y, state = feed(program, state, [0])
    assert state["lif.v"][0, 0] == aff(1) - thr
    assert_prev_dtypes_follow_layout(program, state)


@pytest.mark.parametrize("numerics", NUMERICS)
def test_recurrent_spike_loop_through_affine_sees_bias_at_step_zero_but_not_spikes(numerics):
    # lif ⇢ aff (recurrent) → lif (forward): aff runs first each step on last step's
    # spikes, so its bias arrives in the same step but a spike only one step later
    w, b = 0.5, 0.25
    program = build(spike_loop(w, b), numerics)
    order = [o.name for o in program.ops]
    assert order.index("rec") < order.index("lif")
    if numerics == FLOAT32:
        thr, bias, both = 1.0, b, w + b
    else:
        thr = 64
        bias, both = (int(q_connection(program, "rec", [[s]])[0, 0]) for s in (0, 1))
    state = program.init_state(1)
    y, state = feed(program, state, [2 * thr])
    assert state["lif.v"][0, 0] == 2 * thr + bias and int(y[0]) == 1
    y, state = feed(program, state, [0])
    assert state["lif.v"][0, 0] == both - thr


def test_prev_buffer_of_a_value_node_holds_its_previous_output_over_a_sequence():
    rng = np.random.default_rng(5)
    g = Graph({"in": Input(3), "li": LI(3, [0.5, 0.25, 1.0]), "fb": Linear(rng.normal(0, .3, (3, 3))),
               "out": Output(3)},
              [("in", "li"), ("fb", "li"), ("li", "out")], recurrent=[("li", "fb")])
    for numerics in NUMERICS:
        program = build(g, numerics)
        state = program.init_state(2)
        xs = rng.normal(0, 1, (12, 2, 3))
        if numerics == FIXED:
            xs = np.round(xs / S).astype(np.int64)
        prev_y = np.zeros((2, 3))
        for x in xs:
            before = state["li.prev"].copy()
            assert np.array_equal(before, prev_y)
            y, state = program.step(state, x) if numerics == FLOAT32 else program.step_int(state, x)
            assert np.array_equal(state["li.prev"], y)  # LI's output is the graph's output
            prev_y = y


# --------------------------------------------------- recurrent edge from the Input node


def input_delay_graph() -> Graph:
    """y_t = x_{t-1}: a recurrent edge straight from the Input into a β = 0 LI."""
    return Graph({"in": Input(2), "li": LI(2, 0.0), "out": Output(2)}, [("li", "out")],
                 recurrent=[("in", "li")])


def test_input_delay_line_outputs_the_previous_input():
    program = compile_graph(input_delay_graph())
    state = program.init_state(1)
    ys = []
    for x in ([1.0, 2.0], [3.0, -4.0], [0.5, 0.25]):
        y, state = program.step(state, np.array(x))
        ys.append(y.tolist())
    assert ys == [[0, 0], [1, 2], [3, -4]]


def test_input_prev_buffer_is_a_copy_not_a_view_of_the_callers_array_float():
    program = compile_graph(input_delay_graph())
    state = program.init_state(1)
    x = np.array([1.0, 2.0], dtype=np.float32)  # a sensor buffer reused every step
    _, state = program.step(state, x)
    assert np.array_equal(state["in.prev"], [[1.0, 2.0]])
    x[:] = 99.0  # the caller refills its buffer for the next reading
    assert np.array_equal(state["in.prev"], [[1.0, 2.0]]), "state aliases the caller's input"
    y, _ = program.step(state, np.zeros(2, np.float32))
    assert np.array_equal(y, [1.0, 2.0])


def test_input_prev_buffer_is_a_copy_not_a_view_after_run_float():
    program = compile_graph(input_delay_graph())
    xs = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    _, state = program.run(program.init_state(1), xs)
    xs[:] = 0.0
    assert np.array_equal(state["in.prev"], [[3.0, 4.0]]), "state aliases the caller's input"


def test_input_prev_buffer_is_a_copy_not_a_view_of_the_callers_array_fixed():
    program = build(input_delay_graph(), FIXED, scales={"in": 1.0, "li": 1.0})
    state = program.init_state(1)
    xq = np.array([[3, 4]], dtype=np.int64)
    _, state = program.step_int(state, xq)
    xq[:] = 7
    assert np.array_equal(state["in.prev"], [[3, 4]]), "state aliases the caller's input"
    y, _ = program.step_int(state, np.zeros((1, 2), np.int64))
    assert np.array_equal(y, [[3, 4]])


@pytest.mark.parametrize("via", ["step", "step_int", "run"])
def test_input_prev_buffer_keeps_the_layout_dtype_fixed(via):
    # state_layout() (and the C structs built from it) say int32 for a value node's .prev
    program = build(input_delay_graph(), FIXED, scales={"in": 1.0, "li": 1.0})
    state = program.init_state(1)
    if via == "step":
        _, state = program.step(state, np.array([1.0, 2.0]))
    elif via == "step_int":
        _, state = program.step_int(state, np.array([[1, 2]], dtype=np.int64))
    else:
        _, state = program.run(state, np.array([[1.0, 2.0]]))
    assert np.array_equal(state["in.prev"], [[1, 2]])
    assert_prev_dtypes_follow_layout(program, state)


# -------------------------------------------------------------------------- validation


def _ok_nodes():
    return {"in": Input(2), "lif": LIF(2, 0.5, 1.0), "out": Output(2)}


def _ok_edges():
    return [("in", "lif"), ("lif", "out")]


GRAPH_ERRORS = {
    "shape": (lambda: Graph({"in": Input(2), "lif": LIF(3, 0.5, 1.0), "out": Output(3)},
                            [("in", "lif"), ("lif", "out")]), "shape mismatch"),
    "shape_recurrent": (lambda: Graph({**_ok_nodes(), "fb": Linear(np.ones((3, 2)))},
                                      _ok_edges() + [("fb", "lif")], recurrent=[("lif", "fb")]),
                        "shape mismatch"),
    "unknown_dst": (lambda: Graph(_ok_nodes(), _ok_edges() + [("lif", "nope")]), "unknown node"),
    "unknown_src": (lambda: Graph(_ok_nodes(), _ok_edges(), recurrent=[("ghost", "lif")]),
                    "unknown node"),
    "no_incoming": (lambda: Graph({**_ok_nodes(), "extra": LI(2, 0.5)},
                                  _ok_edges() + [("extra", "out")]), "dangling"),
    "no_outgoing": (lambda: Graph({**_ok_nodes(), "extra": LI(2, 0.5)},
                                  _ok_edges() + [("in", "extra")]), "dangling"),
    "unused_input": (lambda: Graph({**_ok_nodes(), "in2": Input(2)}, _ok_edges()), "dangling"),
    "cycle": (lambda: Graph({"in": Input(2), "a": LI(2, 0.5), "b": LI(2, 0.5), "out": Output(2)},
                            [("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")]),
              "cycle without a delay"),
    "self_loop": (lambda: Graph({"in": Input(2), "a": LI(2, 0.5), "out": Output(2)},
                                [("in", "a"), ("a", "a"), ("a", "out")]), "cycle without a delay"),
    "duplicate": (lambda: Graph(_ok_nodes(), _ok_edges() + [("in", "lif")]), "appears twice"),
    "duplicate_recurrent": (lambda: Graph(_ok_nodes(), _ok_edges(),
                                          recurrent=[("lif", "lif"), ("lif", "lif")]),
                            "appears twice"),
    "no_input": (lambda: Graph({"lif": LIF(2, 0.5, 1.0), "out": Output(2)}, [("lif", "out")]),
                 "no Input node"),
    "no_output": (lambda: Graph({"in": Input(2), "lif": LIF(2, 0.5, 1.0)}, [("in", "lif")]),
                  "no Output node"),
    "into_input": (lambda: Graph(_ok_nodes(), _ok_edges(), recurrent=[("lif", "in")]),
                   "cannot receive edges"),
    "from_output": (lambda: Graph(_ok_nodes(), _ok_edges(), recurrent=[("out", "lif")]),
                    "cannot send edges"),
    "not_a_node": (lambda: Graph({**_ok_nodes(), "x": object()}, _ok_edges()), "not an IR node"),
    "bad_edge": (lambda: Graph(_ok_nodes(), _ok_edges() + [("in", "lif", "out")]),
                 "(source, destination) pair"),
}


@pytest.mark.parametrize("case", sorted(GRAPH_ERRORS))
def test_graph_validation_errors(case):
    make, message = GRAPH_ERRORS[case]
    with pytest.raises(GraphError, match=re.escape(message)):
        make()


def test_validation_names_the_offending_nodes():
    with pytest.raises(GraphError, match=r"'in' produces 2 values but 'lif' takes 3"):
        GRAPH_ERRORS["shape"][0]()
    with pytest.raises(GraphError, match=r"'nope'"):
        GRAPH_ERRORS["unknown_dst"][0]()
    with pytest.raises(GraphError, match=r"node 'extra' has no incoming edge"):
        GRAPH_ERRORS["no_incoming"][0]()
    with pytest.raises(GraphError, match=r"node 'extra' has no outgoing edge"):
        GRAPH_ERRORS["no_outgoing"][0]()
    with pytest.raises(GraphError, match=r"through a, b"):
        GRAPH_ERRORS["cycle"][0]()


def test_the_same_pair_may_be_forward_and_recurrent_and_a_recurrent_cycle_is_fine():
    g = Graph({"in": Input(2), "a": LI(2, 0.5), "b": LI(2, 0.5), "out": Output(2)},
              [("in", "a"), ("a", "b"), ("b", "out")], recurrent=[("b", "a"), ("a", "b")])
    assert g.order == ["in", "a", "b", "out"]
    program = compile_graph(g)
    state = program.init_state(1)
    y, state = program.step(state, np.array([1.0, 2.0]))
    # b gets a_t (forward) + a_{t-1} (recurrent, zero at step 0)
    assert np.array_equal(y, [1.0, 2.0])
    y, state = program.step(state, np.array([0.0, 0.0]))
    # a_1 = 0.5 a_0 + b_0 = 1.5 x0; b_1 = 0.5 b_0 + a_1 + a_0 = (0.5 + 1.5 + 1) x0
    assert np.array_equal(state["a.v"], [[1.5, 3.0]])
    assert np.array_equal(y, [3.0, 6.0])


PARAM_ERRORS = [
    (lambda: LIF(2, 1.5, 1.0), r"LIF.beta must be <= 1"),
    (lambda: LIF(2, [0.5, 1.0001], 1.0), r"LIF.beta must be <= 1"),
    (lambda: LIF(2, -0.1, 1.0), r"LIF.beta must be >= 0"),
    (lambda: LIF(2, 0.5, 0.0), r"LIF.threshold must be > 0"),
    (lambda: LIF(2, 0.5, [1.0, -1.0]), r"LIF.threshold must be > 0"),
    (lambda: LIF(2, np.nan, 1.0), r"LIF.beta contains NaN"),
    (lambda: LIF(2, 0.5, 1.0, "hard"), r"reset must be one of"),
    (lambda: LIF(2, [0.5, 0.5, 0.5], 1.0), r"LIF.beta has shape \(3,\); expected \(2,\)"),
    (lambda: LIF(0, 0.5, 1.0), r"LIF.size must be a positive integer"),
    (lambda: LIF(True, 0.5, 1.0), r"LIF.size must be a positive integer"),
    (lambda: CubaLIF(2, 1.2, 0.5, 1.0), r"CubaLIF.alpha must be <= 1"),
    (lambda: CubaLIF(2, 0.5, 0.5, 1.0, "none"), r"reset must be one of"),
    (lambda: LI(2, 2.0), r"LI.beta must be <= 1"),
    (lambda: Linear([[1.0, np.nan]]), r"Linear.weight contains NaN or Inf"),
    (lambda: Linear([[np.inf]]), r"Linear.weight contains NaN or Inf"),
    (lambda: Linear([1.0, 2.0]), r"non-empty 2-D matrix"),
    (lambda: Affine(np.ones((2, 2)), [0.0, np.nan]), r"Affine.bias contains NaN or Inf"),
    (lambda: Affine(np.ones((2, 2)), [0.0, 0.0, 0.0]), r"Affine.bias has shape"),
    (lambda: Threshold(2, np.nan), r"Threshold.threshold contains NaN"),
    (lambda: SpikeEncoder(2, 3, 1.0, 0.0, 1.5, 1.0), r"SpikeEncoder.beta must be <= 1"),
    (lambda: SpikeEncoder(2, 3, 1.0, 0.0, 0.5, 0.0), r"SpikeEncoder.threshold must be > 0"),
    (lambda: SpikeEncoder(2, 3, np.ones((3, 2)) * np.nan, 0.0, 0.5, 1.0), r"contains NaN"),
]


@pytest.mark.parametrize("make,message", PARAM_ERRORS)
def test_bad_node_parameters_raise_graph_error(make, message):
    with pytest.raises(GraphError, match=message):
        make()


def test_parameter_boundaries_are_accepted():
    assert LIF(2, [0.0, 1.0], 1e-6).beta.tolist() == [0.0, 1.0]
    assert Threshold(1, -3.0).threshold.tolist() == [-3.0]  # any real threshold
    assert LIF(2, 0.5, 1.0, "zero").reset == "zero"


@pytest.mark.parametrize("dt,message", [(0.0, "positive"), (-0.01, "positive"),
                                        (float("nan"), "positive"), (float("inf"), "positive"),
                                        ("fast", "number of seconds"), ([0.1], "number")])
def test_bad_dt_raises_graph_error(dt, message):
    with pytest.raises(GraphError, match=f"dt must be a .*{message}"):
        Graph(_ok_nodes(), _ok_edges(), dt=dt)


def test_positive_dt_is_kept_as_metadata():
    assert Graph(_ok_nodes(), _ok_edges(), dt=0.01).dt == 0.01
    assert Graph(_ok_nodes(), _ok_edges()).dt is None


def test_compile_rejects_two_inputs_or_two_outputs():
    two_in = Graph({"a": Input(2), "b": Input(2), "lif": LIF(2, 0.5, 1.0), "out": Output(2)},
                   [("a", "lif"), ("b", "lif"), ("lif", "out")])
    with pytest.raises(GraphError, match=r"exactly one Input and one Output.*\['a', 'b'\]"):
        compile_graph(two_in)
    with pytest.raises(GraphError, match="exactly one Input"):
        compile_graph(two_in, Quantization(scales={"a": S, "b": S, "lif": S}))
    two_out = Graph({"in": Input(2), "lif": LIF(2, 0.5, 1.0), "o1": Output(2), "o2": Output(2)},
                    [("in", "lif"), ("lif", "o1"), ("lif", "o2")])
    with pytest.raises(GraphError, match="exactly one Input and one Output"):
        compile_graph(two_out)


# ------------------------------------------------------------------- execution order

WA = np.array([[0.5, -0.25], [1.0, 0.125], [-0.75, 0.5]])
WB = np.array([[0.25, 0.5], [-0.5, 0.375], [1.5, -1.0]])
W2 = np.array([[1.0, 0.0, 0.5], [-0.25, 0.5, 0.0], [0.0, 0.75, -1.0]])


def diamond(reverse: bool = False) -> Graph:
    """in → a1 → a2 → merge and in → b → merge; merge (LI) → out. Dyadic weights and
    inputs: every float sum is exact, so any ordering mistake shows as inequality."""
    nodes = {"in": Input(2), "a1": Affine(WA, [0.125, 0.0, -0.5]), "a2": Linear(W2),
             "b": Linear(WB), "merge": LI(3, 0.5), "out": Output(3)}
    edges = [("in", "a1"), ("a1", "a2"), ("a2", "merge"), ("in", "b"), ("b", "merge"),
             ("merge", "out")]
    if reverse:
        nodes = dict(reversed(list(nodes.items())))
        edges = edges[::-1]
    return Graph(nodes, edges)


def test_order_is_topological_and_deterministic():
    for reverse in (False, True):
        g = diamond(reverse)
        pos = {n: i for i, n in enumerate(g.order)}
        assert sorted(g.order) == sorted(g.nodes)
        assert all(pos[s] < pos[d] for s, d in g.edges)
        assert diamond(reverse).order == g.order  # same graph → same order, every time
        names = [o.name for o in compile_graph(g).ops]
        assert names == [o.name for o in compile_graph(diamond(reverse)).ops]
        assert names[-1] == "out" and names.index("merge") > max(names.index("a2"),
                                                                 names.index("b"))


@pytest.mark.parametrize("reverse", [False, True])
def test_diamond_merge_receives_both_branches_of_the_same_step_float(reverse):
    program = compile_graph(diamond(reverse))
    xs = np.array([[1.0, 2.0], [-3.0, 0.5], [0.25, -1.0]], np.float32)
    state = program.init_state(1)
    u = np.zeros(3)
    for x in xs:
        y, state = program.step(state, x)
        a = W2 @ (WA @ x + [0.125, 0.0, -0.5])
        b = WB @ x
        u = 0.5 * u + a + b  # exact in float32 for these dyadic values
        assert np.array_equal(y, u), (x, y, u)
        assert np.array_equal(state["merge.v"][0], u)


@pytest.mark.parametrize("reverse", [False, True])
def test_diamond_merge_receives_both_branches_of_the_same_step_fixed(reverse):
    g = diamond(reverse)
    scales = {"in": 2.0**-8, "a1": 2.0**-7, "a2": S, "b": S, "merge": S}
    program = build(g, FIXED, scales)
    xs = np.array([[256, 512], [-768, 128], [64, -256]])
    state = program.init_state(1)
    u = np.zeros((1, 3), np.int64)
    for x in xs:
        y, state = program.step_int(state, x[None])
        a1 = q_connection(program, "a1", x[None])
        a = q_connection(program, "a2", a1)  # a1 → a2 needs no rescale: in_scale(a2) = s(a1)
        b = q_connection(program, "b", x[None])
        u = saturate32(mul_q(u, op(program, "merge").params["beta"], 30) + a + b)
        assert np.array_equal(state["merge.v"], u)
        assert np.array_equal(y, u)
    # the integer result tracks the float one: the sum really has both branches
    yf, _ = compile_graph(g).run(compile_graph(g).init_state(1), xs * 2.0**-8)
    assert np.allclose(y[0] * S, yf[-1], atol=0.1)


# ----------------------------------------------------------------------------- batching


def exact_float_graph(seed: int) -> Graph:
    """Encoder → Affine → CubaLIF (recurrent Linear) → Linear → LI. Every matrix product
    multiplies 0/1 spikes by multiples of 1/8, so float sums are exact in any order."""
    rng = np.random.default_rng(seed)
    d = lambda *shape: rng.integers(-8, 9, shape) / 8.0  # noqa: E731
    return Graph(
        {"in": Input(3),
         "enc": SpikeEncoder(3, 4, rng.normal(0, 1.5, (3, 4)), rng.normal(0, .2, (3, 4)), 0.8, .5),
         "fc": Affine(d(8, 12), d(8)), "hid": CubaLIF(8, 0.6, 0.85, 1.0),
         "rec": Linear(d(8, 8)), "ro": Linear(d(2, 8)), "li": LI(2, 0.9), "out": Output(2)},
        [("in", "enc"), ("enc", "fc"), ("fc", "hid"), ("rec", "hid"), ("hid", "ro"),
         ("ro", "li"), ("li", "out")], recurrent=[("hid", "rec")])


def sequences(seed: int, batch: int, steps: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[None, :, None]
    return (1.5 * np.sin(0.3 * t + rng.uniform(0, 6, (batch, 1, 3)))
            + 0.5 * rng.normal(size=(batch, steps, 3))).astype(np.float32)


@lru_cache(maxsize=None)
def programs(seed: int):
    g = exact_float_graph(seed)
    quant = edgesnn.calibrate(g, sequences(seed + 100, 3, 60))
    return compile_graph(g), compile_graph(g, quant)


@pytest.mark.parametrize("numerics", NUMERICS)
@DET
@given(seed=st.integers(0, 3), batch=st.integers(1, 4), steps=st.integers(1, 25),
       data_seed=st.integers(0, 2**31))
def test_batched_run_equals_separate_runs(numerics, seed, batch, steps, data_seed):
    program = programs(seed)[NUMERICS.index(numerics)]
    xs = sequences(data_seed, batch, steps)
    ys, state = program.run(program.init_state(batch), xs)
    assert ys.shape == (batch, steps, 2)
    for b in range(batch):
        y1, s1 = program.run(program.init_state(1), xs[b])
        assert y1.shape == (steps, 2)
        assert np.array_equal(ys[b], y1)
        for k in s1:
            assert np.array_equal(state[k][b:b + 1], s1[k]), k
    # and step by step with a batch equals the batched run
    st_ = program.init_state(batch)
    stepped = []
    for t in range(steps):
        y, st_ = program.step(st_, xs[:, t])
        stepped.append(y)
    assert np.array_equal(np.stack(stepped, axis=1), ys)


@pytest.mark.parametrize("numerics", NUMERICS)
def test_batched_run_is_not_trivial(numerics):
    program = programs(0)[NUMERICS.index(numerics)]
    xs = sequences(7, 3, 40)
    ys, _ = program.run(program.init_state(3), xs)
    assert np.abs(ys).sum() > 0
    assert not np.array_equal(ys[0], ys[1])  # different inputs → different outputs


@pytest.mark.parametrize("numerics", NUMERICS)
def test_step_output_shapes(numerics):
    program = programs(1)[NUMERICS.index(numerics)]
    y, state = program.step(program.init_state(1), np.ones(3))
    assert y.shape == (2,) and y.dtype == np.float32
    assert all(v.shape[0] == 1 for v in state.values())
    y, state = program.step(program.init_state(4), np.ones((4, 3)))
    assert y.shape == (4, 2)
    assert all(v.shape[0] == 4 for v in state.values())
    ys, _ = program.run(program.init_state(1), np.ones((5, 3)))
    assert ys.shape == (5, 2)
    ys, _ = program.run(program.init_state(2), np.ones((2, 5, 3)))
    assert ys.shape == (2, 5, 2)


def _advanced_state(program, batch):
    state = program.init_state(batch)
    _, state = program.run(state, sequences(3, batch, 10))
    assert any(np.any(v != 0) for v in state.values())
    return state


def _copy(state):
    return {k: v.copy() for k, v in state.items()}


def _same(a, b):
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("numerics", NUMERICS)
def test_wrong_batch_state_raises_input_error_mentioning_reset(numerics):
    program = programs(2)[NUMERICS.index(numerics)]
    state = _advanced_state(program, 2)
    before = _copy(state)
    calls = [lambda: program.step(state, np.ones(3)),               # batch 1 vs 2
             lambda: program.step(state, np.ones((3, 3))),          # batch 3 vs 2
             lambda: program.run(state, np.ones((4, 3))),           # one sequence vs 2
             lambda: program.run(state, np.ones((3, 4, 3)))]
    if numerics == FIXED:
        calls.append(lambda: program.step_int(state, np.ones((1, 3), np.int64)))
    for call in calls:
        with pytest.raises(InputError, match="reset"):
            call()
        assert _same(state, before)


@pytest.mark.parametrize("numerics", NUMERICS)
def test_a_failing_call_leaves_the_given_state_untouched(numerics):
    program = programs(2)[NUMERICS.index(numerics)]
    state = _advanced_state(program, 1)
    before = _copy(state)
    broken = dict(state)
    broken.pop(program.state_layout()[-1][0])  # one buffer missing, the others valid
    bad_calls = [
        (lambda: program.step(state, np.array([1.0, np.nan, 0.0])), "NaN"),
        (lambda: program.step(state, np.ones(4)), "features"),
        (lambda: program.run(state, np.array([[1.0, 2.0, np.inf]])), "NaN or Inf"),
        (lambda: program.step(broken, np.ones(3)), "missing"),
    ]
    if numerics == FIXED:
        bad_calls.append((lambda: program.step_int(state, np.ones((1, 3))), "integers"))
    for call, message in bad_calls:
        with pytest.raises(InputError, match=message):
            call()
        assert _same(state, before)
        assert all(np.array_equal(broken[k], before[k]) for k in broken)
    # and a successful call does not modify it either (the state is functional)
    y1, s1 = program.step(state, np.ones(3))
    assert _same(state, before)
    y2, s2 = program.step(state, np.ones(3))
    assert np.array_equal(y1, y2) and _same(s1, s2)
