"""NIR export and import: exact round trips of every node type NIR can hold, the dt
conversion, networks exported by snnTorch, the shipped models, and a clear error for
everything NIR or edgesnn cannot hold."""

import dataclasses

import numpy as np
import pytest
from node_graphs import KINDS, ordinary_model

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.controllers.snn_controller import SHIPPED_PD
from edgesnn.errors import BackendError, ModelFileError
from edgesnn.ir import LI, LIF, Affine, CubaLIF, Graph, Input, Linear, Output
from edgesnn.modelfile import Model
from edgesnn.models.reference import L2MU_DEMO_MODEL, REFERENCE_MODEL, VPR_DEMO_MODEL

nir = pytest.importorskip("nir")
from edgesnn.export.nir import (decay_from_tau, delayed_edges, export_nir,  # noqa: E402
                                import_nir, tau_from_decay, to_nir)

EXPORTABLE = [k for k in KINDS if k != "AdaptiveLIF"]


def nir_model(kind: str, seed: int = 3) -> Model:
    """The model-file test's graph of one node type, made ordinary for NIR: ordinary
    weights (node_graphs), decays of exactly 1 (τ = ∞, NIR has no unit-gain form of it
    beside finite τ) lowered to 0.95, reset="subtract" (NIR has no exact zero reset),
    and a dt where the graph has none."""
    model = ordinary_model(kind, np.random.default_rng(seed))
    nodes = {}
    for name, node in model.graph.nodes.items():
        changes = {f.name: np.where(getattr(node, f.name) == 1, 0.95, getattr(node, f.name))
                   for f in dataclasses.fields(node) if f.name in ("alpha", "beta")}
        if hasattr(node, "reset"):
            changes["reset"] = "subtract"
        nodes[name] = dataclasses.replace(node, **changes)
    graph = dataclasses.replace(model.graph, nodes=nodes, dt=model.graph.dt or 0.01)
    return Model(graph, metadata={"name": f"nir-{kind}", "classes": ["a", "b"]})


def run_float(model: Model, xs: np.ndarray) -> np.ndarray:
    prog = get_backend("numpy-float")(model)
    ys, _ = prog.run(prog.init_state(xs.shape[0]), xs)
    return ys


def inputs(model: Model, seed: int = 0, steps: int = 120, batch: int = 2) -> np.ndarray:
    n = model.graph.nodes[model.graph.inputs()[0]].size
    return (2 * np.random.default_rng(seed).normal(size=(batch, steps, n))).astype(np.float32)


# ------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("kind", EXPORTABLE)
def test_every_node_type_round_trips_exactly(tmp_path, kind):
    model = nir_model(kind)
    report = export_nir(model, tmp_path / f"{kind}.nir")
    assert report["dt"] == model.graph.dt and report["nodes"] == sum(report["node_types"].values())
    loaded = import_nir(tmp_path / f"{kind}.nir")
    # every parameter, node order, edge and recurrent edge, and dt are equal
    assert loaded.graph == model.graph
    assert loaded.metadata == model.metadata and loaded.quantization is None
    xs = inputs(model)
    ys = run_float(model, xs)
    assert len(np.unique(ys)) > 1
    np.testing.assert_allclose(run_float(loaded, xs), ys, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", EXPORTABLE)
def test_the_nir_graph_alone_imports_to_the_same_network(tmp_path, kind):
    """Without edgesnn's graph metadata (what another NIR writer would give) the nodes
    come back by their structure, and the delays by delayed_edges."""
    model = nir_model(kind)
    graph = to_nir(model)
    graph.metadata = {}
    nir.write(tmp_path / "bare.nir", graph)
    loaded = import_nir(tmp_path / "bare.nir", dt=model.graph.dt)
    assert {n: loaded.graph.nodes[n] for n in model.graph.nodes} == model.graph.nodes
    assert sorted(loaded.graph.recurrent) == sorted(model.graph.recurrent)
    xs = inputs(model)
    np.testing.assert_allclose(run_float(loaded, xs), run_float(model, xs), rtol=0, atol=1e-5)


def test_subtract_reset_is_written_as_an_exact_nir_circuit():
    model = nir_model("LIF")
    lif = model.graph.nodes["lif"]
    sub = to_nir(model).nodes["lif"]
    assert isinstance(sub, nir.NIRGraph)
    kinds = {k: type(n).__name__ for k, n in sub.nodes.items()}
    assert kinds == {"input": "Input", "mem": "LI", "spike": "Threshold", "reset": "Linear",
                     "output": "Output"}
    assert sorted(sub.edges) == sorted([("input", "mem"), ("mem", "spike"), ("spike", "reset"),
                                        ("reset", "mem"), ("spike", "output")])
    np.testing.assert_array_equal(sub.nodes["reset"].weight, -np.diag(lif.threshold))
    np.testing.assert_array_equal(sub.nodes["spike"].threshold, lif.threshold)


def test_grouped_linear_is_a_dense_block_diagonal_linear():
    model = nir_model("GroupedLinear")
    g = model.graph.nodes["g"]
    node = to_nir(model).nodes["g"]
    assert type(node) is nir.Linear
    np.testing.assert_array_equal(node.weight, np.kron(np.eye(g.groups), g.weight))


@pytest.mark.parametrize("population", ["LI", "LIF"])
def test_no_leak_is_exported_as_nir_integrator(tmp_path, population):
    node = LI(3, 1.0) if population == "LI" else LIF(3, 1.0, 0.7)
    graph = Graph({"in": Input(2), "fc": Affine(np.full((3, 2), 0.4), np.zeros(3)), "p": node,
                   "out": Output(3)}, [("in", "fc"), ("fc", "p"), ("p", "out")], dt=0.01)
    model = Model(graph)
    written = to_nir(model).nodes["p"]
    leak = written if population == "LI" else written.nodes["mem"]
    assert type(leak) is nir.I
    export_nir(model, tmp_path / "i.nir")
    assert import_nir(tmp_path / "i.nir").graph == graph


# --------------------------------------------------------------------- dt conversion

def test_dt_conversion_formulas():
    # forward Euler, as snnTorch's export_nir (tau = dt / (1 - beta)) and import_nir
    # (beta = 1 - dt / tau) and Norse's LIFBox (v += dt/tau (v_leak - v + i)) have it
    assert tau_from_decay(0.9, 1e-3) == pytest.approx(0.01)
    assert decay_from_tau(0.01, 1e-3) == pytest.approx(0.9)
    assert decay_from_tau(0.01, 2e-3) == pytest.approx(0.8)  # another dt, another decay
    assert decay_from_tau(0.01, 1e-2) == 0.0
    assert tau_from_decay(1.0, 1e-3) == np.inf
    # β → τ → β gives back every float32 decay bit for bit
    rng = np.random.default_rng(0)
    beta = np.concatenate([rng.uniform(0, 1, 5000), [0.0, 0.5, 0.9, 0.999999]]).astype(np.float32)
    for dt in (1e-4, 1e-3, 0.05, 0.1):
        back = decay_from_tau(tau_from_decay(beta, dt), dt).astype(np.float32)
        np.testing.assert_array_equal(back, beta)


def test_dt_sets_the_written_time_constants_and_the_read_decays(tmp_path):
    graph = Graph({"in": Input(2), "fc": Affine(np.eye(2), np.zeros(2)), "li": LI(2, 0.9),
                   "out": Output(2)}, [("in", "fc"), ("fc", "li"), ("li", "out")], dt=1e-3)
    li = to_nir(Model(graph)).nodes["li"]
    np.testing.assert_allclose(li.tau, 1e-3 / (1 - float(np.float32(0.9))), rtol=1e-12)
    np.testing.assert_allclose(li.r, li.tau / 1e-3, rtol=1e-12)  # unit input gain
    export_nir(Model(graph), tmp_path / "li.nir")
    assert import_nir(tmp_path / "li.nir").graph.nodes["li"].beta[0] == np.float32(0.9)
    # the same file read at another step length: dt overrides the metadata
    slower = import_nir(tmp_path / "li.nir", dt=2e-3).graph
    assert slower.dt == 2e-3
    assert slower.nodes["li"].beta[0] == pytest.approx(0.8, abs=1e-6)


def test_missing_dt_is_refused_on_export_and_import(tmp_path):
    model = nir_model("Linear")
    model.graph.dt = None
    with pytest.raises(BackendError, match=r"graph\.dt is not set.*model\.graph\.dt = "):
        export_nir(model, tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()
    graph = to_nir(nir_model("LI"))
    graph.metadata = {}
    with pytest.raises(ModelFileError, match="no dt .* pass dt"):
        import_nir(graph)
    with pytest.raises(ModelFileError, match="positive"):
        import_nir(graph, dt=-1.0)


def test_input_gain_other_than_one_is_kept(tmp_path):
    """A NIR LI with R = 1 (Norse writes it so) takes dt/τ of its input per step: it
    imports behind a diagonal Linear holding that gain."""
    tau, dt = np.array([0.02, 0.05]), 1e-3
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "li": nir.LI(tau=tau, r=np.ones(2), v_leak=np.zeros(2)),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "li"), ("li", "output")], metadata={"dt": dt})
    model = import_nir(graph)
    np.testing.assert_allclose(np.diag(model.graph.nodes["li.gain"].weight), dt / tau, rtol=1e-6)
    xs = inputs(model, steps=50, batch=1)
    v, expected = np.zeros(2), []
    for x in xs[0]:  # τ dv/dt = -v + R I, forward Euler
        v = v + dt / tau * (-v + x)
        expected.append(v)
    np.testing.assert_allclose(run_float(model, xs)[0], expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ delays

def test_a_nested_recurrent_subgraph_delays_the_population_output():
    """snnTorch's RLeaky as NIR: a subgraph LIF ⇄ Affine. The delay falls on the LIF's
    spikes, so the recurrent bias acts from the first step (as in snnTorch)."""
    rng = np.random.default_rng(5)
    n, dt = 3, 1e-4
    beta, thr = np.full(n, 0.85), np.ones(n)
    w_in, w_rec, b_rec = rng.normal(0, 1, (n, 2)), rng.normal(0, 0.5, (n, n)), rng.normal(0, .3, n)
    tau = dt / (1 - beta)
    rnn = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n])}),
               "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(n), v_threshold=thr),
               "w_rec": nir.Affine(weight=w_rec, bias=b_rec),
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "fc": nir.Linear(weight=w_in), "rnn": rnn,
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")], metadata={})
    model = import_nir(graph, dt=dt, reset="subtract")
    assert model.graph.recurrent == [("rnn.lif", "rnn.w_rec")]
    xs = inputs(model, steps=200, batch=1)
    mem, spk, expected = np.zeros(n), np.zeros(n), []
    for x in xs[0].astype(np.float64):
        mem = beta * mem + w_in @ x + w_rec @ spk + b_rec - spk * thr
        spk = (mem > thr).astype(float)
        expected.append(spk)
    ys = run_float(model, xs)[0]
    assert 0 < ys.sum() < ys.size
    np.testing.assert_array_equal(ys, expected)


def test_delayed_edges_find_one_delay_per_cycle_after_the_population():
    graph = nir_model("LIF").graph  # in -> fc -> lif -> out, lif -> rec -> lif
    assert delayed_edges(graph.nodes, graph.edges + graph.recurrent) == [("lif", "rec")]
    cuba = nir_model("CubaLIF").graph  # a self-loop
    assert delayed_edges(cuba.nodes, cuba.edges + cuba.recurrent) == [("cuba", "cuba")]


def test_delayed_edges_leave_no_cycle_undelayed():
    # dense random graphs, where moving a delay off a closing edge can leave a second
    # cycle through that edge: every graph must build (Graph rejects undelayed cycles)
    rng = np.random.default_rng(0)
    for _ in range(300):
        names = [f"n{i}" for i in range(rng.integers(2, 7))]
        nodes = {"in": Input(2), "out": Output(2),
                 **{k: LIF(2, 0.9, 1.0) if rng.random() < 0.4 else Linear(np.eye(2))
                    for k in names}}
        chain = ["in", *names, "out"]
        edges = list(zip(chain, chain[1:])) + [
            (a, b) for a in names for b in names if rng.random() < 0.3]
        edges = list(dict.fromkeys(edges))
        delayed = delayed_edges(nodes, edges)
        Graph(nodes, [e for e in edges if e not in delayed], delayed)


# --------------------------------------------------------------------------- snnTorch

def _snntorch_net(torch, snn):
    """nn.Linear + snn.Leaky, + snn.Synaptic, + snn.RLeaky (all-to-all, with bias), with
    snnTorch's default reset by subtraction, per-neuron parameters (snnTorch's NIR
    export needs arrays) and weights doubled so that every layer fires often."""
    torch.manual_seed(0)

    def full(n, v):
        return torch.full((n,), v)

    layers = [torch.nn.Linear(6, 16), snn.Leaky(beta=full(16, 0.9), threshold=full(16, 1.0),
                                                init_hidden=True),
              torch.nn.Linear(16, 12, bias=False),
              snn.Synaptic(alpha=full(12, 0.7), beta=full(12, 0.8), threshold=full(12, 1.0),
                           init_hidden=True),
              torch.nn.Linear(12, 8),
              snn.RLeaky(beta=full(8, 0.85), threshold=full(8, 1.0), linear_features=8,
                         init_hidden=True, output=True)]
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(2.0)
    return layers


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # nirtorch's, inside snnTorch
def test_snntorch_export_imports_with_the_same_spikes(tmp_path):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    export_nir_mod = pytest.importorskip("snntorch.export_nir")  # needs nirtorch
    import snntorch.utils

    layers = _snntorch_net(torch, snn)
    net = torch.nn.Sequential(*layers)
    graph = export_nir_mod.export_to_nir(net, torch.randn(1, 6), ignore_dims=[0])
    nir.write(tmp_path / "snntorch.nir", graph)
    # snnTorch converts with dt = 1e-4 and writes no dt; its Leaky default resets by
    # subtraction, which its NIR file does not say
    model = import_nir(tmp_path / "snntorch.nir", dt=1e-4, reset="subtract")

    neurons = {i: layer for i, layer in enumerate(layers) if isinstance(layer, snn.SpikingNeuron)}
    names = {}
    for name, node in model.graph.nodes.items():
        if isinstance(node, (LIF, CubaLIF)):
            names[int(name.split(".")[0])] = name
            layer = neurons[int(name.split(".")[0])]
            # the decays come back bit for bit: β = 1 − dt/τ undoes snnTorch's float32
            # τ = dt/(1 − β) to within half a float32 step
            np.testing.assert_array_equal(node.beta, layer.beta.numpy())
            if isinstance(node, CubaLIF):
                np.testing.assert_array_equal(node.alpha, layer.alpha.numpy())
    assert sorted(names) == sorted(neurons)
    assert model.graph.recurrent == [(names[5], f"{names[5].split('.')[0]}.w_rec")]

    theirs = {i: [] for i in neurons}
    def keep(i):  # a neuron returns its spikes, or (spikes, membrane) when output=True
        return lambda mod, inp, out: theirs[i].append(
            (out[0] if isinstance(out, tuple) else out).detach().numpy()[0].copy())

    hooks = [layer.register_forward_hook(keep(i)) for i, layer in neurons.items()]
    steps = 300
    x = 1.5 * torch.randn(steps, 1, 6, generator=torch.Generator().manual_seed(1))
    snntorch.utils.reset(net)
    with torch.no_grad():
        for t in range(steps):
            net(x[t])
    for hook in hooks:
        hook.remove()

    prog = get_backend("numpy-float")(model)
    state, mine = prog.init_state(1), {i: [] for i in neurons}
    for t in range(steps):
        _, state = prog.step(state, x[t].numpy())
        for i, name in names.items():
            mine[i].append(state[f"{name}.v"][0] > model.graph.nodes[name].threshold)
    # Exactly equal spike trains: the same float32 operations on bit-equal parameters.
    # The currents differ in the last bits (torch's and numpy's matrix products sum in
    # different orders; RLeaky adds its recurrent term after β·mem, edgesnn before), so
    # a spike could only flip if a membrane came within ~1e-6 of ϑ: none does here.
    for i in neurons:
        spikes = np.array(theirs[i], dtype=bool)
        assert 0.05 < spikes.mean() < 0.95, (i, spikes.mean())
        np.testing.assert_array_equal(np.array(mine[i]), spikes, err_msg=f"layer {i}")


def test_snntorch_file_needs_the_reset_said():
    # a NIR LIF as snnTorch writes it (v_reset = 0, R = τ/dt)
    tau, dt = np.full(3, 1e-3), 1e-4
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}),
               "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(3), v_threshold=np.ones(3)),
               "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "lif"), ("lif", "output")], metadata={})
    with pytest.raises(ModelFileError, match=r"'lif'.*v_reset.*reset='subtract'"):
        import_nir(graph, dt=dt)
    assert import_nir(graph, dt=dt, reset="subtract").graph.nodes["lif"].beta[0] == \
        np.float32(0.9)
    with pytest.raises(ModelFileError, match="reset must be"):
        import_nir(graph, dt=dt, reset="zero")


# ---------------------------------------------------------------------- shipped models

@pytest.mark.parametrize("path", [REFERENCE_MODEL, L2MU_DEMO_MODEL, SHIPPED_PD, VPR_DEMO_MODEL],
                         ids=["reference", "l2mu", "controller-pd", "vpr"])
def test_shipped_models_export_and_reimport(tmp_path, path):
    model = edgesnn.load_model(path)
    if model.graph.dt is None:  # the place-recognition ensemble: one Linear, no dt
        with pytest.raises(BackendError, match="graph.dt is not set"):
            export_nir(model, tmp_path / "m.nir")
        model.graph.dt = 0.05
    report = export_nir(model, tmp_path / "m.nir")
    assert report["quantization_dropped"]
    loaded = import_nir(tmp_path / "m.nir")
    assert loaded.graph == model.graph and loaded.metadata == model.metadata
    xs = inputs(model, steps=100)
    np.testing.assert_allclose(run_float(loaded, xs), run_float(Model(model.graph), xs),
                               rtol=0, atol=1e-5)


def test_l2mu_reports_the_delay_only_metadata_places(tmp_path):
    # The L2MU's hidden layer reads the memory of the same step and feeds u back one step
    # later; a reader that only sees the NIR cycles delays m -> h_from_m instead.
    report = export_nir(edgesnn.load_model(L2MU_DEMO_MODEL), tmp_path / "l2mu.nir")
    assert report["delays_from_metadata"] == [["h", "u_from_h"]]


# ---------------------------------------------------------------------------- refusals

def test_nodes_nir_cannot_hold_are_refused(tmp_path):
    with pytest.raises(BackendError, match="AdaptiveLIF.*NIR cannot hold it exactly"):
        export_nir(ordinary_model("AdaptiveLIF", np.random.default_rng(0)), tmp_path / "a.nir")
    zero = ordinary_model("LIF", np.random.default_rng(0))  # reset="zero"
    with pytest.raises(BackendError, match="reset='zero'.*only reset='subtract'"):
        export_nir(zero, tmp_path / "z.nir")
    mixed = Graph({"in": Input(2), "fc": Affine(np.eye(2), np.zeros(2)), "li": LI(2, [1.0, 0.5]),
                   "out": Output(2)}, [("in", "fc"), ("fc", "li"), ("li", "out")], dt=0.01)
    with pytest.raises(BackendError, match="'li'.*decays of 1"):
        export_nir(Model(mixed), tmp_path / "m.nir")
    assert not list(tmp_path.iterdir())


def test_delays_nir_cannot_mark_are_refused(tmp_path):
    nodes = {"in": Input(2), "fc": Linear(np.eye(2)), "out": Output(2)}
    acyclic = Graph(nodes, [("in", "fc")], recurrent=[("fc", "out")], dt=0.01)
    with pytest.raises(BackendError, match="closes no cycle"):
        export_nir(Model(acyclic), tmp_path / "m.nir")
    both = Graph(nodes, [("in", "fc"), ("fc", "out")], recurrent=[("in", "fc")], dt=0.01)
    with pytest.raises(BackendError, match="both a forward and a recurrent edge"):
        export_nir(Model(both), tmp_path / "m.nir")


def _graph_with(node, type_check: bool = True):
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                               "odd": node,
                               "output": nir.Output(output_type={"output": np.array([3])})},
                        edges=[("input", "odd"), ("odd", "output")], metadata={"dt": 1e-3},
                        type_check=type_check)


@pytest.mark.parametrize("node", [
    nir.Delay(delay=np.ones(3)),
    nir.Flatten(input_type={"input": np.array([3])}, start_dim=0, end_dim=-1),
    nir.Conv1d(input_shape=3, weight=np.ones((1, 1, 1)), stride=1, padding=0, dilation=1,
               groups=1, bias=np.zeros(1)),
], ids=["Delay", "Flatten", "Conv1d"])
def test_unsupported_nir_nodes_are_named(node):
    with pytest.raises(ModelFileError, match=f"'odd' is a {type(node).__name__}, which edgesnn "
                                             "cannot import"):
        import_nir(_graph_with(node, type_check=False))


def test_unsupported_node_in_a_file(tmp_path):
    nir.write(tmp_path / "delay.nir", _graph_with(nir.Delay(delay=np.ones(3))))
    with pytest.raises(ModelFileError, match=r"delay\.nir: NIR node 'odd' is a Delay"):
        import_nir(tmp_path / "delay.nir")


@pytest.mark.parametrize("case", ["v_leak", "tau below dt", "2-D input"])
def test_nir_parameters_edgesnn_cannot_hold(case):
    li = dict(tau=np.full(3, 0.01), r=np.full(3, 10.0), v_leak=np.zeros(3))
    if case == "v_leak":
        li["v_leak"] = np.full(3, 0.2)
    if case == "tau below dt":
        li["tau"] = np.full(3, 1e-4)
    graph = _graph_with(nir.LI(**li))
    if case == "2-D input":
        graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 3])}),
                                    "output": nir.Output(output_type={"output": np.array([1, 3])})},
                             edges=[("input", "output")], metadata={"dt": 1e-3})
    match = {"v_leak": "non-zero v_leak", "tau below dt": "at least dt = 0.001 s",
             "2-D input": "1-D"}[case]
    with pytest.raises(ModelFileError, match=match):
        import_nir(graph)


@pytest.fixture
def nir_file(tmp_path):
    path = tmp_path / "good.nir"
    export_nir(nir_model("LIF"), path)
    return path


@pytest.mark.parametrize("case", ["truncated", "garbled", "esnn", "text", "empty", "hdf5",
                                  "missing", "directory"])
def test_corrupt_and_foreign_files(tmp_path, nir_file, case):
    data = nir_file.read_bytes()
    path = tmp_path / f"{case}.nir"
    if case == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif case == "garbled":
        noise = np.random.default_rng(0).integers(0, 256, 4000, np.uint8)
        path.write_bytes(data[:8] + noise.tobytes())
    elif case == "esnn":
        edgesnn.save(nir_model("LIF"), path)
    elif case == "text":
        path.write_text("not a network\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "hdf5":  # a valid HDF5 file that holds no NIR graph
        h5py = pytest.importorskip("h5py")
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=np.arange(3))
    elif case == "directory":
        path.mkdir()
    with pytest.raises(ModelFileError) as info:
        import_nir(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    expected = {"truncated": "corrupt", "garbled": "corrupt", "esnn": "not a NIR file",
                "text": "not a NIR file", "empty": "empty", "hdf5": "not a NIR graph",
                "missing": "no such NIR file", "directory": "directory"}[case]
    assert expected in message, message


def test_export_and_import_commands_round_trip(tmp_path, capsys):
    from edgesnn.cli import main

    assert main(["export", str(VPR_DEMO_MODEL), "--target", "nir", "--out",
                 str(tmp_path / "v.nir")]) == 1  # no dt in the model: said how to give one
    assert "--dt" in capsys.readouterr().err
    assert main(["export", str(SHIPPED_PD), "--target", "nir", "--out", str(tmp_path / "pd.nir")]) == 0
    assert "quantization was not written" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "pd.nir"), "--out", str(tmp_path / "pd.esnn")]) == 0
    original, back = edgesnn.load_model(SHIPPED_PD), edgesnn.load_model(tmp_path / "pd.esnn")
    assert back.graph == original.graph
    assert main(["import", str(tmp_path / "missing.nir"), "--out", str(tmp_path / "x.esnn")]) == 1
    assert "no such NIR file" in capsys.readouterr().err
