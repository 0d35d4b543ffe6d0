"""Fast modules, modular systems, hyperactive-neuron removal, the compiled ensemble and
the `edgesnn vpr` commands on a small synthetic route."""

import numpy as np
import pytest

import edgesnn
from edgesnn.cli import main
from edgesnn.compile import compile_graph
from edgesnn.errors import InputError, ModelFileError
from edgesnn.models.vpr import ensemble as E
from edgesnn.models.vpr import synthetic
from edgesnn.models.vpr.fast import FastConfig, FastModule, train_fast_module
from edgesnn.models.vpr.metrics import ground_truth, recall_at_n
from edgesnn.models.vpr.preprocess import Preprocessing

PRE = Preprocessing()
SMALL = FastConfig(features=256, epochs=4)


@pytest.fixture(scope="module")
def route():
    world = synthetic.make_world(60, seed=3)
    reference = np.stack([PRE(synthetic.render(world, c, seed=k))
                          for k, c in enumerate(synthetic.REFERENCE_CONDITIONS)])
    query = PRE(synthetic.render(world, "dusk", seed=9))
    return reference, query


@pytest.fixture(scope="module")
def trained(route):
    reference, query = route
    gt = ground_truth(20, 60, np.arange(20))
    return E.train_place_model(reference, PRE, systems=2, places_per_module=25, config=SMALL,
                               seed=5, calibration=(query[:20], gt), workers=1)


def test_training_is_deterministic_per_seed_and_independent_of_workers(route):
    reference, _ = route
    a = E.train_systems(reference, PRE, 2, 25, SMALL, seed=1, workers=1)
    b = E.train_systems(reference, PRE, 2, 25, SMALL, seed=1, workers=2)
    c = E.train_systems(reference, PRE, 2, 25, SMALL, seed=2, workers=1)
    for sa, sb in zip(a, b):
        for ma, mb in zip(sa.modules, sb.modules):
            for k in ("weight", "threshold", "readout"):
                np.testing.assert_array_equal(getattr(ma, k), getattr(mb, k))
    assert not np.array_equal(a[0].modules[0].weight, c[0].modules[0].weight)
    # the two systems of one run differ (different receptive fields)
    assert not np.array_equal(a[0].modules[0].weight, a[1].modules[0].weight)


def test_regions_cover_the_route_with_a_short_last_region():
    assert [(r.start, r.stop) for r in E.regions(60, 25)] == [(0, 25), (25, 50), (50, 60)]
    assert [(r.start, r.stop) for r in E.regions(10, 25)] == [(0, 10)]
    with pytest.raises(InputError):
        E.regions(0, 25)


def test_a_module_recognises_its_training_places(route):
    reference, query = route
    module = train_fast_module(reference[:, :25], PRE.size, SMALL, seed=0)
    assert set(np.unique(module.spikes(reference[0, :25]))) <= {0.0, 1.0}
    r1 = np.mean(module.scores(reference[0, :25]).argmax(1) == np.arange(25))
    assert r1 >= 0.9


def test_removal_rule_counts_responses_and_removes_at_or_above_t():
    # one system, one module of 3 places, 2 features: hand-made responses
    module = FastModule(weight=np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
                        threshold=np.array([0.5, 0.5], np.float32),
                        readout=np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.2]], np.float32))
    system = E.System([module], places_per_module=3)
    images = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    # scores: [1,1,0], [1,0,.2], [2,1,.2], [0,0,0] → responses (> 0.5): neuron 0 on 3 images,
    # neuron 1 on 2, neuron 2 on none
    np.testing.assert_array_equal(E.response_counts([system], images, 0.5), [[3, 2, 0]])
    model = E.PlaceModel([system], Preprocessing(size=(1, 2), patch=1), 3, FastConfig(),
                         counts=np.array([[3, 2, 0]]), threshold=2, seed=0)
    np.testing.assert_array_equal(model.keep, [[False, False, True]])
    np.testing.assert_array_equal(model.removed_per_module(), [[2]])


def test_threshold_is_chosen_on_calibration_recall():
    # neuron 0 is hyperactive: it wins every query unless removed
    scores = np.array([[[5.0, 1.0, 0.0], [5.0, 0.0, 1.0]]], np.float32)  # (systems, N, outputs)
    counts = np.array([[9, 1, 1]])
    gt = ground_truth(2, 3, [1, 2])
    assert E.choose_threshold(counts, scores, gt, 3) == 9
    # when removal cannot help, nothing is removed
    assert E.choose_threshold(counts, scores, ground_truth(2, 3, [0, 0]), 3) is None


def test_compiled_ensemble_equals_the_modules_and_int8_stays_close(trained, route):
    reference, query = route
    gt = ground_truth(60, 60)
    for removal in (False, True):
        model = trained.to_model(removal)
        program = compile_graph(model.graph)
        sim = E.similarity(program, query, 60)
        keep = trained.keep if removal else np.ones_like(trained.keep)
        expected = (E.system_scores(trained.systems, query) * keep[:, None]).sum(0)[:, :60]
        # float sums in a different order: equal to rounding
        np.testing.assert_allclose(sim, expected, rtol=1e-5, atol=1e-6)
    quantized = edgesnn.quantize(trained.to_model(), reference[0][:, None, :])
    simq = E.similarity(compile_graph(quantized.graph, quantized.quantization), query, 60)
    assert abs(recall_at_n(simq, gt, (1,))[1] - recall_at_n(sim, gt, (1,))[1]) <= 0.05
    memory = compile_graph(quantized.graph, quantized.quantization).memory()
    assert memory.flash < compile_graph(quantized.graph).memory().flash / 3  # int8 vs float32


def test_the_ensemble_beats_one_of_its_systems(trained, route):
    _, query = route
    gt = ground_truth(60, 60)
    scores = E.system_scores(trained.systems, query)
    single = recall_at_n(scores[0][:, :60], gt, (1,))[1]
    both = recall_at_n(scores.sum(0)[:, :60], gt, (1,))[1]
    assert both >= single


def test_bad_inputs_are_rejected(route):
    reference, _ = route
    with pytest.raises(InputError, match="pixels"):
        train_fast_module(reference[:, :5, :100], PRE.size, SMALL)
    bad = reference[:, :5].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        train_fast_module(bad, PRE.size, SMALL)
    with pytest.raises(InputError, match="NaN"):  # caught before any worker starts
        E.train_systems(bad, PRE, 1, 5, SMALL)
    with pytest.raises(InputError, match="systems must be a positive integer"):
        E.train_systems(reference, PRE, 0, 25, SMALL)
    with pytest.raises(InputError, match="workers must be a positive integer"):
        E.train_systems(reference, PRE, 1, 25, SMALL, workers=-1)
    with pytest.raises(InputError, match="settings"):
        FastConfig(rate=1.5)
    with pytest.raises(ModelFileError):
        FastConfig.from_metadata({"features": 10, "colour": "blue"})


def test_vpr_commands_train_eval_query_end_to_end(tmp_path, capsys):
    pytest.importorskip("PIL")
    data = tmp_path / "route"
    assert main(["vpr", "synth", "--out", str(data), "--places", "40", "--seed", "2"]) == 0
    model = tmp_path / "places.esnn"
    assert main(["vpr", "train", "--reference", str(data / "reference"), "--out", str(model),
                 "--places-per-module", "20", "--systems", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained 2 systems x 2 modules on 40 places" in out
    assert main(["vpr", "eval", "--model", str(model), "--query", str(data / "query" / "dusk"),
                 "--reference", str(data / "reference"), "--backend", "numpy-int"]) == 0
    out = capsys.readouterr().out
    assert "ensemble (numpy-int)" in out and "SAD baseline" in out
    image = data / "query" / "dusk" / "00007.png"
    assert main(["vpr", "query", str(model), str(image), "--top", "2"]) == 0
    assert "1. place" in capsys.readouterr().out
    # a model of another family, a missing folder: clear errors, exit code 1
    from edgesnn.models.reference import REFERENCE_MODEL
    assert main(["vpr", "query", str(REFERENCE_MODEL), str(image)]) == 1
    assert "not a place-recognition model" in capsys.readouterr().err
    assert main(["vpr", "eval", "--model", str(model), "--query", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["vpr", "train", "--reference", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "x.esnn")]) == 1
    assert "no images" in capsys.readouterr().err
    assert not (tmp_path / "x.esnn").exists()
