"""View modules, modular systems, hyperactive-neuron removal, the compiled ensemble and
the `edgesnn vpr` commands on a small synthetic route."""

import numpy as np
import pytest

import edgesnn
from edgesnn.cli import main
from edgesnn.compile import compile_graph
from edgesnn.errors import InputError, ModelFileError
from edgesnn.models.vpr import ensemble as E
from edgesnn.models.vpr import synthetic
from edgesnn.models.vpr.metrics import ground_truth, recall_at_n
from edgesnn.models.vpr.preprocess import Preprocessing
from edgesnn.models.vpr.views import (
    ViewConfig,
    ViewModule,
    shift_images,
    train_view_module,
)

PRE = Preprocessing()
SMALL = ViewConfig(shifts=2)


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
            np.testing.assert_array_equal(ma.weight, mb.weight)
    assert not all(np.array_equal(x.weight, y.weight) for x, y in zip(a[0].modules, c[0].modules))
    # the systems of one run draw different viewpoint shifts
    assert not all(np.array_equal(x.weight, y.weight) for x, y in zip(a[0].modules, a[1].modules))


def test_regions_cover_the_route_with_a_short_last_region():
    assert [(r.start, r.stop) for r in E.regions(60, 25)] == [(0, 25), (25, 50), (50, 60)]
    assert [(r.start, r.stop) for r in E.regions(10, 25)] == [(0, 10)]
    with pytest.raises(InputError):
        E.regions(0, 25)


def test_shift_replicates_the_edges():
    x = np.arange(9, dtype=np.float32).reshape(1, 9)  # 3x3: rows 0 1 2 / 3 4 5 / 6 7 8
    np.testing.assert_array_equal(shift_images(x, (3, 3), 0, 1), [[1, 2, 2, 4, 5, 5, 7, 8, 8]])
    np.testing.assert_array_equal(shift_images(x, (3, 3), -1, 0), [[0, 1, 2, 0, 1, 2, 3, 4, 5]])
    np.testing.assert_array_equal(shift_images(x, (3, 3), 0, 0), x)


def test_a_module_imprints_centred_unit_views_and_recognises_its_places(route):
    reference, query = route
    module = train_view_module(reference[:, :25], PRE.size, SMALL, seed=0)
    assert module.weight.shape == (2 * SMALL.shifts, 25, 784)
    np.testing.assert_allclose(module.weight.sum(axis=2), 0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(module.weight, axis=2), 1, rtol=1e-5)
    assert np.mean(module.scores(query[:25]).argmax(1) == np.arange(25)) >= 0.8
    # a flat view cannot be told from anything: its neuron stays silent instead of NaN
    flat = train_view_module(np.full((1, 2, 784), 0.5, np.float32), PRE.size, ViewConfig(shifts=1))
    np.testing.assert_array_equal(flat.weight, 0)


def test_removal_rule_counts_responses_and_removes_at_or_above_t():
    # one system, one module of 3 places with one view each; drives are x itself
    module = ViewModule(np.eye(3, dtype=np.float32)[None])
    system = E.System([module], places_per_module=3)
    images = np.array([[3, 2, 1], [3, 1, 2], [1, 3, 2], [3, 2, 0]], np.float32)
    # the 2 most driven neurons per image: {0,1}, {0,2}, {1,2}, {0,1}
    np.testing.assert_array_equal(E.response_counts([system], images, 2, 3), [[[3, 3, 2]]])
    model = E.PlaceModel([system], Preprocessing(size=(1, 3), patch=1), 3, ViewConfig(),
                         counts=np.array([[[3, 3, 2]]]), threshold=3, seed=0)
    np.testing.assert_array_equal(model.keep, [[[False, False, True]]])
    np.testing.assert_array_equal(model.removed_per_module(), [[2]])
    # padding neurons (a short last region) never respond
    padded = E.System([module, ViewModule(np.eye(3, dtype=np.float32)[None, :1])], 3)
    counts = E.response_counts([padded], images, 2, 4)
    assert counts.shape == (1, 1, 6) and counts[0, 0, 4:].sum() == 0


def test_threshold_is_chosen_on_calibration_recall():
    # neuron 0 is hyperactive: it wins every query unless removed
    drives = np.array([[5.0, 1.0, 0.0], [5.0, 0.0, 1.0]], np.float32)[:, None, None, :]
    counts = np.array([[[9, 1, 1]]])
    gt = ground_truth(2, 3, [1, 2])
    assert E.choose_threshold(counts, drives, gt, 3) == 9
    # when removal cannot help, nothing is removed
    assert E.choose_threshold(counts, drives, ground_truth(2, 3, [0, 0]), 3) is None


def test_place_score_is_the_best_view_summed_over_systems():
    drives = np.array([[[[1.0, 4.0], [3.0, 0.0]], [[2.0, 2.0], [0.0, 5.0]]]])  # (1, 2, 2, 2)
    np.testing.assert_array_equal(E.place_scores(drives, 2), [[3 + 2, 4 + 5]])
    keep = np.ones((2, 2, 2), bool)
    keep[1, 1, 1] = False
    np.testing.assert_array_equal(E.place_scores(drives, 2, keep), [[5, 4 + 2]])


def test_compiled_ensemble_equals_the_modules_and_int8_stays_close(trained, route):
    reference, query = route
    gt = ground_truth(60, 60)
    for removal in (False, True):
        model = trained.to_model(removal)
        layout, _ = E.place_metadata(model)
        sim = E.similarity(compile_graph(model.graph), query, layout)
        keep = trained.keep if removal else None
        expected = E.place_scores(E.neuron_drives(E.ensemble_weight(trained.systems), query), 60, keep)
        # float sums in a different order: equal to rounding
        np.testing.assert_allclose(sim, expected, rtol=1e-5, atol=1e-5)
    quantized = edgesnn.quantize(trained.to_model(), reference[0][:, None, :])
    simq = E.similarity(compile_graph(quantized.graph, quantized.quantization), query, layout)
    assert abs(recall_at_n(simq, gt, (1,))[1] - recall_at_n(sim, gt, (1,))[1]) <= 0.05
    memory = compile_graph(quantized.graph, quantized.quantization).memory()
    assert memory.flash < compile_graph(quantized.graph).memory().flash / 3  # int8 vs float32
    # one system of the ensemble is a model of its own
    single = trained.to_model(removal=False, systems=1)
    assert E.place_metadata(single)[0].systems == 1


def test_the_ensemble_beats_one_of_its_systems(trained, route):
    _, query = route
    gt = ground_truth(60, 60)
    drives = E.neuron_drives(E.ensemble_weight(trained.systems), query)
    single = recall_at_n(E.place_scores(drives[:, :1], 60), gt, (1,))[1]
    both = recall_at_n(E.place_scores(drives, 60), gt, (1,))[1]
    assert both >= single


def test_bad_inputs_are_rejected(route, trained):
    reference, _ = route
    with pytest.raises(InputError, match="pixels"):
        train_view_module(reference[:, :5, :100], PRE.size, SMALL)
    bad = reference[:, :5].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        train_view_module(bad, PRE.size, SMALL)
    with pytest.raises(InputError, match="NaN"):  # caught before any worker starts
        E.train_systems(bad, PRE, 1, 5, SMALL)
    with pytest.raises(InputError, match="systems must be a positive integer"):
        E.train_systems(reference, PRE, 0, 25, SMALL)
    with pytest.raises(InputError, match="workers must be a positive integer"):
        E.train_systems(reference, PRE, 1, 25, SMALL, workers=-1)
    with pytest.raises(InputError, match="settings"):
        ViewConfig(shifts=10)  # only 9 shifts of ±1 px exist
    with pytest.raises(ModelFileError):
        ViewConfig.from_metadata({"shifts": 2, "colour": "blue"})
    model = trained.to_model()
    model.metadata["views"] = 7
    with pytest.raises(ModelFileError, match="does not fit"):
        E.place_metadata(model)


def test_vpr_commands_train_eval_query_end_to_end(tmp_path, capsys):
    pytest.importorskip("PIL")
    data = tmp_path / "route"
    assert main(["vpr", "synth", "--out", str(data), "--places", "40", "--seed", "2"]) == 0
    model = tmp_path / "places.esnn"
    assert main(["vpr", "train", "--reference", str(data / "reference"), "--out", str(model),
                 "--places-per-module", "20", "--systems", "2", "--shifts", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained 2 systems x 2 modules x 4 views on 40 places" in out
    assert main(["vpr", "eval", "--model", str(model), "--query", str(data / "query" / "dusk"),
                 "--reference", str(data / "reference"), "--backend", "numpy-int"]) == 0
    out = capsys.readouterr().out
    assert "ensemble (numpy-int)" in out and "SAD baseline" in out
    image = data / "query" / "dusk" / "00007.png"
    assert main(["vpr", "query", str(model), str(image), "--top", "2"]) == 0
    assert "1. place" in capsys.readouterr().out
    assert main(["vpr", "train", "--reference", str(data / "reference"), "--out", str(model),
                 "--shifts", "10"]) == 1
    assert "invalid view-module settings" in capsys.readouterr().err
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


def _demo_route():
    from edgesnn.models.reference import VPR_DEMO_ROUTE
    world = synthetic.make_world(VPR_DEMO_ROUTE["places"], VPR_DEMO_ROUTE["seed"])
    return world, VPR_DEMO_ROUTE["seed"]


def test_shipped_demo_ensemble_recognises_its_route_in_float_and_int8():
    from edgesnn.backends import get_backend
    from edgesnn.models.reference import VPR_DEMO_MODEL
    from edgesnn.models.vpr.metrics import sad_similarity

    model = edgesnn.load_model(VPR_DEMO_MODEL)
    layout, pre = E.place_metadata(model)
    world, seed = _demo_route()
    assert layout.places == world.places and model.quantization is not None
    reference = synthetic.reference_traverses(world, seed, pre)
    dusk = pre(synthetic.render(world, "dusk", seed=synthetic.traverse_seed(seed, "query", 0)))
    gt = ground_truth(world.places, world.places)
    recall = {b: recall_at_n(E.similarity(get_backend(b)(model), dusk, layout), gt, (1,))[1]
              for b in ("numpy-float", "numpy-int")}
    sad = recall_at_n(sad_similarity(dusk, reference), gt, (1,))[1]
    assert recall["numpy-int"] >= 0.9 and recall["numpy-int"] >= sad
    assert abs(recall["numpy-float"] - recall["numpy-int"]) <= 1 / world.places


@pytest.mark.slow
def test_make_vpr_demo_rebuilds_the_shipped_ensemble(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from edgesnn.models.reference import VPR_DEMO_MODEL

    tool = Path(__file__).resolve().parents[1] / "tools" / "make_vpr_demo.py"
    subprocess.run([sys.executable, str(tool), "--out", str(tmp_path / "demo.esnn")], check=True,
                   capture_output=True)
    rebuilt, shipped = edgesnn.load_model(tmp_path / "demo.esnn"), edgesnn.load_model(VPR_DEMO_MODEL)
    assert rebuilt.metadata == shipped.metadata
    assert rebuilt.quantization.scales == shipped.quantization.scales
    np.testing.assert_array_equal(rebuilt.graph.nodes["views"].weight,
                                  shipped.graph.nodes["views"].weight)
