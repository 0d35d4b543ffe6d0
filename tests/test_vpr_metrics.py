"""VPR metrics on hand-made matrices whose answers are worked out in the comments."""

import numpy as np
import pytest

from edgesnn.errors import DataError, InputError
from edgesnn.models.vpr import metrics as vpr
from edgesnn.models.vpr.metrics import (
    PrCurve,
    best_matches,
    false_match_counts,
    ground_truth,
    plot_pr_curves,
    plot_similarity,
    precision_recall,
    recall_at_n,
    sad_similarity,
)

# ---------------------------------------------------------------- ground truth


def test_ground_truth_by_index():
    assert np.array_equal(ground_truth(3, 3), np.eye(3, dtype=bool))
    # ±1 around the diagonal: tridiagonal, clipped at both corners
    expected = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], bool)
    assert np.array_equal(ground_truth(4, 4, tolerance=1), expected)


def test_ground_truth_one_match_per_query_with_tolerance():
    matches = np.array([1, 5, -1, 0])
    expected = np.zeros((4, 6), bool)
    expected[[0, 1, 3], [1, 5, 0]] = True
    assert np.array_equal(ground_truth(4, 6, matches), expected)
    wide = ground_truth(4, 6, matches, tolerance=1)
    assert np.array_equal(np.flatnonzero(wide[0]), [0, 1, 2])
    assert np.array_equal(np.flatnonzero(wide[1]), [4, 5])  # 6 clipped away
    assert not wide[2].any()  # no match stays no match
    assert np.array_equal(np.flatnonzero(wide[3]), [0, 1])  # -1 clipped away
    # a plain list, and integral floats as loaded from a CSV, mean the same
    assert np.array_equal(ground_truth(4, 6, [1, 5, -1, 0], tolerance=1), wide)
    assert np.array_equal(ground_truth(4, 6, matches.astype(float), tolerance=1), wide)


def test_ground_truth_several_matches_per_query():
    gt = ground_truth(3, 5, [[0, 2], [], [4]], tolerance=1)
    assert np.array_equal(gt, np.array([[1, 1, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], bool))
    # a 2-D array is rows of matches padded with -1
    padded = ground_truth(3, 5, np.array([[0, 2], [-1, -1], [4, -1]]), tolerance=1)
    assert np.array_equal(padded, gt)


@pytest.mark.parametrize("args, kwargs, words", [
    ((3, 4), {}, "ground-truth file"),                      # unequal sizes need matches
    ((-1, 4), {"matches": []}, "n_query"),
    ((2, 4), {"matches": [0, 1], "tolerance": -1}, "tolerance"),
    ((2, 4), {"matches": [0, 4]}, "reference 4"),             # out of range
    ((2, 4), {"matches": [0, -2]}, "reference -2"),
    ((2, 4), {"matches": [[0], [1, 7]]}, "query 1"),
    ((3, 4), {"matches": np.array([0, 1])}, "2 queries"),   # wrong length
    ((2, 4), {"matches": np.array([0.5, 1.0])}, "integer"),
])
def test_ground_truth_rejects(args, kwargs, words):
    with pytest.raises(DataError, match=words):
        ground_truth(*args, **kwargs)


# ---------------------------------------------------------------- recall@N

SIM_4x4 = np.array([
    [0.9, 0.1, 0.3, 0.2],  # gt 0: ranked first                                  -> rank 0
    [0.8, 0.5, 0.7, 0.1],  # gt 1: order 0 (.8), 2 (.7), 1 (.5)                  -> rank 2
    [0.2, 0.6, 0.4, 0.3],  # gt 2: order 1 (.6), 2 (.4)                          -> rank 1
    [0.4, 0.3, 0.2, 0.1],  # gt 3: order 0, 1, 2, 3                              -> rank 3
])


def test_recall_equal_sizes():
    # ranks 0, 2, 1, 3: recall@1 = 1/4, @2 = 2/4, @3 = 3/4, @5 capped to @4 = 4/4
    r = recall_at_n(SIM_4x4, ground_truth(4, 4), ns=(1, 2, 3, 5))
    assert r == {1: 0.25, 2: 0.5, 3: 0.75, 5: 1.0}


def test_recall_unequal_sizes():
    # 3 queries, 5 references, correct references 4, 0, 2
    sim = np.array([[0.1, 0.2, 0.3, 0.4, 0.5],   # best is 4           -> rank 0
                    [0.3, 0.9, 0.1, 0.1, 0.1],   # 1 (.9) then 0 (.3)  -> rank 1
                    [0.5, 0.4, 0.3, 0.2, 0.1]])  # 0, 1, then 2        -> rank 2
    r = recall_at_n(sim, ground_truth(3, 5, [4, 0, 2]), ns=(1, 2, 10))
    assert r == pytest.approx({1: 1 / 3, 2: 2 / 3, 10: 1.0})
    # more queries than references: 5 queries, 2 references
    sim = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.3], [0.2, 0.3], [0.5, 0.5]])
    gt = ground_truth(5, 2, [0, 1, 1, 0, 1])
    # ranks 0, 1, 0, 1, 1 (tie: 0 before 1) -> @1 = 2/5, @5 capped to @2 = 5/5
    assert recall_at_n(sim, gt, ns=(1, 5)) == pytest.approx({1: 0.4, 5: 1.0})


def test_false_match_counts_count_wrong_best_matches_per_reference():
    # best matches 1, 1, 2, 0 (tie → lower index); correct references 0, 1, 0, 0
    sim = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.1], [0.3, 0.1, 0.7], [0.5, 0.5, 0.2]])
    counts = false_match_counts(sim, ground_truth(4, 3, [0, 1, 0, 0]))
    np.testing.assert_array_equal(counts, [0, 1, 1])
    # tolerance ±1: query 0's best (1) is next to its place (0) and counts as correct;
    # query 2's best (2) is two away and stays wrong
    np.testing.assert_array_equal(false_match_counts(sim, ground_truth(4, 3, [0, 1, 0, 0], 1)),
                                  [0, 0, 1])


def test_tolerance_widens_correctness():
    # each query's best reference is one index past its labelled match
    sim = np.array([[0.1, 0.2, 0.9, 0.3],
                    [0.1, 0.2, 0.3, 0.9]])
    matches = [1, 2]
    assert recall_at_n(sim, ground_truth(2, 4, matches), ns=(1,)) == {1: 0.0}
    assert recall_at_n(sim, ground_truth(2, 4, matches, tolerance=1), ns=(1,)) == {1: 1.0}


def test_query_without_match_is_left_out_of_recall_but_is_a_false_positive():
    sim = np.array([[0.9, 0.1, 0.0],   # gt 0: best 0, score .9, correct
                    [0.2, 0.8, 0.1],   # no true match: best 1, score .8, a false positive
                    [0.1, 0.7, 0.3]])  # gt 2: best 1, score .7, wrong; 2 is second
    gt = ground_truth(3, 3, [0, -1, 2])
    # denominators are the 2 queries with a match: @1 = 1/2 (not 1/3), @2 = 2/2
    assert recall_at_n(sim, gt, ns=(1, 2)) == {1: 0.5, 2: 1.0}
    # thresholds .9 .8 .7 accept 1, 2, 3 queries with 1, 1, 1 correct
    curve = precision_recall(sim, gt)
    assert np.allclose(curve.thresholds, [0.9, 0.8, 0.7])
    assert np.allclose(curve.precision, [1, 1 / 2, 1 / 3])
    assert np.allclose(curve.recall, [0.5, 0.5, 0.5])
    assert curve.auc == pytest.approx(0.5)  # 0.5 * 1 + 0 + 0
    assert curve.recall_at_100_precision == 0.5


def test_ties_rank_lower_reference_first():
    sim = np.array([[0.5, 0.5, 0.5],   # gt 2: tied with 0 and 1, ranked after both -> rank 2
                    [0.5, 0.5, 0.1],   # gt 0: tied with 1, ranked first            -> rank 0
                    [0.2, 0.7, 0.7]])  # gt 2: tied with 1, ranked after it          -> rank 1
    gt = ground_truth(3, 3, [2, 0, 2])
    assert recall_at_n(sim, gt, ns=(1, 2, 3)) == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})
    assert np.array_equal(best_matches(sim), [0, 0, 1])


def test_rank_counting_agrees_with_a_stable_sort():
    rng = np.random.default_rng(3)
    sim = rng.integers(0, 4, size=(40, 25)).astype(float)  # many ties
    gt = rng.random((40, 25)) < 0.08
    gt[0] = False  # one query without a match
    order = np.argsort(-sim, axis=1, kind="stable")
    has = gt.any(axis=1)
    first = np.argmax(np.take_along_axis(gt, order, axis=1), axis=1)[has]
    ns = (1, 2, 5, 30)
    expected = {n: float(np.mean(first < n)) for n in ns}
    assert recall_at_n(sim, gt, ns=ns) == pytest.approx(expected)


# ---------------------------------------------------------------- precision-recall


def test_pr_curve_four_queries_with_a_tied_score():
    sim = np.array([[0.9, 0.1, 0.2, 0.3],   # best 0, .9, correct
                    [0.8, 0.2, 0.1, 0.0],   # best 0, .8, wrong (gt 1)
                    [0.1, 0.2, 0.8, 0.3],   # best 2, .8, correct -- same score as query 1
                    [0.1, 0.2, 0.3, 0.6]])  # best 3, .6, correct
    curve = precision_recall(sim, ground_truth(4, 4))
    # threshold .9 accepts 1 (1 TP); .8 accepts 3 together (2 TP); .6 accepts 4 (3 TP)
    assert np.allclose(curve.thresholds, [0.9, 0.8, 0.6])
    assert np.allclose(curve.precision, [1, 2 / 3, 3 / 4])
    assert np.allclose(curve.recall, [1 / 4, 2 / 4, 3 / 4])
    # 1/4 * 1 + 1/4 * 2/3 + 1/4 * 3/4 = 12/48 + 8/48 + 9/48
    assert curve.auc == pytest.approx(29 / 48)
    assert curve.recall_at_100_precision == 0.25
    with pytest.raises(ValueError):  # frozen arrays
        curve.precision[0] = 0.0


def test_pr_curve_extremes():
    sim = np.array([[0.9, 0.1], [0.1, 0.8]])
    perfect = precision_recall(sim, ground_truth(2, 2))
    assert perfect.auc == pytest.approx(1.0) and perfect.recall_at_100_precision == 1.0
    # both queries' true match is reference 1: query 0's best (0, score .9) is wrong, query
    # 1's (1, .8) right, so precision is never 1; recall 0 then 1/2, precision 0 then 1/2
    wrong_first = precision_recall(sim, ground_truth(2, 2, [1, 1]))
    assert wrong_first.recall_at_100_precision == 0.0
    assert np.allclose(wrong_first.precision, [0, 1 / 2])
    assert np.allclose(wrong_first.recall, [0, 1 / 2])
    assert wrong_first.auc == pytest.approx(0.25)  # 0 * 0 + (1/2 - 0) * 1/2


# ---------------------------------------------------------------- SAD baseline


def test_sad_matches_a_double_loop(monkeypatch):
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(7, 11)), rng.normal(size=(5, 11))
    expected = np.array([[-np.mean(np.abs(a - b)) for b in r] for a in q])
    for chunk in (1, 3, 256):
        assert np.allclose(sad_similarity(q, r, chunk=chunk), expected, rtol=0, atol=1e-12)
    monkeypatch.setattr(vpr, "_BLOCK_VALUES", 20)  # force several reference blocks too
    assert np.allclose(sad_similarity(q, r, chunk=2), expected, rtol=0, atol=1e-12)


def test_sad_takes_the_best_traverse():
    query = np.array([[0.0, 0.0]])
    reference = np.array([[[1, 1], [0, 0], [2, 2]],         # -1, 0, -2
                          [[0.5, 0.5], [3, 3], [4, 4]]])    # -0.5, -3, -4
    assert np.array_equal(sad_similarity(query, reference), [[-0.5, 0.0, -2.0]])
    # uint8 images are compared as floats, not with wrap-around
    u8 = sad_similarity(np.array([[0, 255]], np.uint8), np.array([[255, 0]], np.uint8))
    assert u8[0, 0] == -255.0


@pytest.mark.parametrize("query, reference", [
    (np.zeros(4), np.zeros((3, 4))),              # 1-D query
    (np.zeros((2, 4)), np.zeros((3, 5))),         # feature mismatch
    (np.zeros((2, 4)), np.zeros((1, 2, 3, 4))),   # 4-D reference
    (np.full((2, 4), np.nan), np.zeros((3, 4))),  # NaN
])
def test_sad_rejects(query, reference):
    with pytest.raises(InputError):
        sad_similarity(query, reference)


# ---------------------------------------------------------------- bad inputs


def test_bad_similarity_and_gt_raise_input_error():
    gt = ground_truth(4, 4)
    nan = SIM_4x4.copy()
    nan[1, 2] = np.nan
    for call in (lambda: recall_at_n(nan, gt), lambda: precision_recall(nan, gt),
                 lambda: best_matches(nan)):
        with pytest.raises(InputError, match="NaN"):
            call()
    with pytest.raises(InputError, match="shape"):
        recall_at_n(SIM_4x4, ground_truth(4, 5, [0, 1, 2, 3]))
    with pytest.raises(InputError, match="shape"):
        precision_recall(SIM_4x4[:3], gt)
    with pytest.raises(InputError, match="N must be >= 1"):
        recall_at_n(SIM_4x4, gt, ns=(0,))
    with pytest.raises(DataError, match="no query has a true match"):
        recall_at_n(SIM_4x4, np.zeros((4, 4), bool))


# ---------------------------------------------------------------- plots


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = b"\x89PNG"
    curves = {"sad": precision_recall(SIM_4x4, ground_truth(4, 4)),
              "snn": PrCurve(np.array([1.0, 0.5]), np.array([0.5, 0.5]), np.array([2.0, 1.0]),
                             0.5, 0.5)}
    plot_pr_curves(curves, tmp_path / "pr.png")
    plot_similarity(SIM_4x4, ground_truth(4, 4), tmp_path / "sim.png", title="4×4")
    # a tall matrix is subsampled for display
    rng = np.random.default_rng(1)
    tall = rng.random((2100, 30))
    plot_similarity(tall, ground_truth(2100, 30, np.arange(2100) % 30), tmp_path / "tall.png")
    for name in ("pr.png", "sim.png", "tall.png"):
        data = (tmp_path / name).read_bytes()
        assert len(data) > 1000 and data.startswith(png)
