"""Visual place recognition metrics: recall@N, precision-recall, the SAD baseline, plots.

A similarity matrix is (n_query, n_reference), higher = more similar; the query and
reference traverses may differ in length. Ground truth is a boolean matrix of the same
shape, ``gt[q, r]`` True when reference ``r`` is a correct match for query ``q``; a row of
all False is a query with no true match (a place the reference traverse never visited).

One tie rule everywhere, so recall@1, the PR curve and the plotted best match always
agree: references are ranked by similarity, equal similarities by lower reference index
first (the order of a stable argsort of ``-similarity``, and the index ``np.argmax``
returns). It is deterministic but neither optimistic nor pessimistic, so a system that
outputs a constant similarity scores whatever the reference order happens to give.

numpy only; matplotlib is imported by the plot functions alone (extra ``plot``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edgesnn.errors import DataError, InputError, require

# Values in one broadcast (query block, reference block, features) temporary of
# sad_similarity: 2**22 float64 values are 32 MB, small enough for a single-board computer.
_BLOCK_VALUES = 2**22

# Larger matrices are subsampled for display: a PNG cannot show more pixels than this anyway.
_MAX_DISPLAY = 2000


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value to compare
class PrCurve:
    """One point per distinct score threshold, from the highest threshold to the lowest.

    There is no artificial (recall 0, precision 1) starting point: every point is a
    threshold the system can actually run at.
    """

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray
    auc: float
    recall_at_100_precision: float


def ground_truth(n_query: int, n_reference: int,
                 matches: Sequence[Sequence[int]] | np.ndarray | None = None,
                 tolerance: int = 0) -> np.ndarray:
    """The boolean (n_query, n_reference) ground truth.

    ``matches``: None when query i is reference i (aligned traverses of equal length);
    one reference index per query, -1 for a query with no true match; or one list of
    correct reference indices per query (empty for none). A 2-D integer array is read as
    the latter, -1 entries being padding. ``tolerance=k`` also accepts every reference
    within ±k indices of a listed match, because neighbouring frames of a traverse show
    nearly the same place.
    """
    n_query = _integer("n_query", n_query, 0, DataError)
    n_reference = _integer("n_reference", n_reference, 0, DataError)
    tolerance = _integer("tolerance", tolerance, 0, DataError)
    gt = np.zeros((n_query, n_reference), dtype=bool)
    if matches is None:
        if n_query != n_reference:
            raise DataError(f"{n_query} queries but {n_reference} references: they cannot be "
                            "matched by index; give a ground-truth file (matches)")
        np.fill_diagonal(gt, True)
    else:
        rows = _match_rows(matches, n_query)
        for q, refs in enumerate(rows):
            refs = refs[refs != -1]
            bad = refs[(refs < 0) | (refs >= n_reference)]
            if bad.size:
                raise DataError(f"ground truth of query {q} names reference {int(bad[0])}, "
                                f"outside 0..{n_reference - 1} (use -1 for no match)")
            gt[q, refs] = True
    return _widen(gt, tolerance) if tolerance else gt


def best_matches(similarity: np.ndarray) -> np.ndarray:
    """The most similar reference of each query (ties: the lowest reference index)."""
    similarity = _check_similarity(similarity)
    if similarity.shape[1] == 0:
        raise InputError("similarity has no reference columns; there is nothing to match")
    return np.argmax(similarity, axis=1)  # argmax returns the first maximum: the tie rule


def false_match_counts(similarity: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(n_reference,) how many queries take each reference as a *wrong* best match.

    The hubness diagnostic: hyperactive neurons show up as a few references taking
    many false matches; without hubs the errors spread thinly over the route.
    """
    similarity, gt = _check_pair(similarity, gt)
    best = best_matches(similarity)
    wrong = ~gt[np.arange(len(best)), best]
    return np.bincount(best[wrong], minlength=similarity.shape[1])


def recall_at_n(similarity: np.ndarray, gt: np.ndarray,
                ns: Iterable[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries with a correct reference among their N most similar ones.

    Counted per query, over the queries that have at least one true match (a query with
    none cannot be recalled, so it would only cap recall below 1). N above the number of
    references is capped to it. Ties follow the module's rule (lower index first).
    """
    similarity, gt = _check_pair(similarity, gt)
    wanted = [_integer("recall@N's N", n, 1, InputError) for n in ns]
    has_match = _queries_with_match(gt)
    rank = _first_correct_rank(similarity[has_match], gt[has_match])
    n_ref = similarity.shape[1]
    return {n: float(np.mean(rank < min(n, n_ref))) for n in wanted}


def precision_recall(similarity: np.ndarray, gt: np.ndarray) -> PrCurve:
    """The PR curve of the standard VPR protocol.

    Each query proposes its best match with that similarity as its score; at threshold t
    the queries scoring >= t are accepted (equal scores are accepted together). Precision
    is correct accepted / accepted; recall is correct accepted / queries that have a true
    match, so an accepted query without one is a false positive. ``auc`` is the step-wise
    (average-precision) sum of (recall_i - recall_{i-1}) * precision_i, which never
    interpolates between thresholds and so never credits a precision the system cannot
    reach. ``recall_at_100_precision`` is the highest recall before the first false
    positive (0 when the most confident match is wrong).
    """
    similarity, gt = _check_pair(similarity, gt)
    n_true = int(np.count_nonzero(_queries_with_match(gt)))
    best = best_matches(similarity)
    queries = np.arange(similarity.shape[0])
    score = similarity[queries, best]
    correct = gt[queries, best]

    order = np.argsort(-score, kind="stable")
    score, correct = score[order], correct[order]
    # the last query of each run of equal scores closes one threshold
    last = np.flatnonzero(np.append(score[1:] != score[:-1], True))
    tp = np.cumsum(correct)[last]
    accepted = last + 1
    precision = tp / accepted
    recall = tp / n_true
    auc = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    perfect = tp == accepted  # integer test: precision exactly 1 without float rounding
    r100 = float(recall[perfect].max()) if perfect.any() else 0.0
    return PrCurve(_frozen(precision), _frozen(recall), _frozen(score[last]), auc, r100)


def sad_similarity(query: np.ndarray, reference: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Negative mean absolute difference between every query and reference image.

    The classic sum-of-absolute-differences baseline on flattened (patch-normalised)
    images: ``query`` is (n_query, features), ``reference`` (n_reference, features) or
    (traverses, n_reference, features) for several traverses of the same places, where a
    place scores its best-matching traverse (max over traverses). Blocks of ``chunk``
    queries are compared with as many references as keep the broadcast temporary near
    ``_BLOCK_VALUES`` values, so memory stays bounded for long traverses. Integer images
    are compared as floats (uint8 differences would wrap).
    """
    query, reference = np.asarray(query), np.asarray(reference)
    if query.ndim != 2:
        raise InputError(f"query must be (n_query, features); got shape {query.shape}")
    if reference.ndim not in (2, 3):
        raise InputError("reference must be (n_reference, features) or (traverses, "
                         f"n_reference, features); got shape {reference.shape}")
    features = query.shape[1]
    if features == 0 or reference.shape[-1] != features:
        raise InputError(f"query has {features} features and reference {reference.shape[-1]}; "
                         "flatten both to the same non-zero length")
    for name, x in (("query", query), ("reference", reference)):
        if x.dtype.kind not in "biuf":
            raise InputError(f"{name} must be numeric; got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise InputError(f"{name} has NaN or inf values; clean the images first")
    chunk = _integer("chunk", chunk, 1, InputError)

    if reference.ndim == 3 and reference.shape[0] == 0:
        raise InputError("reference has no traverses; give at least one")
    dtype = np.result_type(query.dtype, reference.dtype, np.float32)
    query = query.astype(dtype, copy=False)
    traverses = reference.astype(dtype, copy=False).reshape(-1, *reference.shape[-2:])
    n_query, n_ref = query.shape[0], traverses.shape[1]
    ref_block = max(1, _BLOCK_VALUES // (chunk * features))
    out = np.full((n_query, n_ref), -np.inf, dtype=dtype)
    for traverse in traverses:
        for q0 in range(0, n_query, chunk):
            q = query[q0:q0 + chunk, None, :]
            for r0 in range(0, n_ref, ref_block):
                diff = q - traverse[None, r0:r0 + ref_block, :]
                np.abs(diff, out=diff)
                view = out[q0:q0 + chunk, r0:r0 + ref_block]
                np.maximum(view, -diff.mean(axis=2), out=view)
    return out


def plot_pr_curves(curves: dict[str, PrCurve], path: str | Path) -> None:
    """One precision-recall line per system, AUC in the legend, written as PNG."""
    if not curves:
        raise InputError("no PR curves to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    for name, curve in curves.items():
        # steps drawn as the AUC integrates them: precision_i holds over (recall_{i-1}, recall_i]
        recall = np.concatenate([[0.0], curve.recall])
        precision = np.concatenate([curve.precision[:1], curve.precision])
        ax.plot(recall, precision, drawstyle="steps-pre",
                label=f"{name} (AUC {curve.auc:.3f}, R@100%P {curve.recall_at_100_precision:.2f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_similarity(similarity: np.ndarray, gt: np.ndarray, path: str | Path,
                    title: str = "") -> None:
    """The similarity matrix (queries down, references across), ground truth and best matches.

    Sides longer than 2000 are subsampled evenly for display (noted in the title); the
    ground truth and best-match marks keep their exact reference positions.
    """
    similarity, gt = _check_pair(similarity, gt)
    n_query, n_ref = similarity.shape
    if n_query == 0 or n_ref == 0:
        raise InputError(f"cannot plot an empty similarity matrix of shape {similarity.shape}")
    rows, cols = _display_index(n_query), _display_index(n_ref)
    best = best_matches(similarity)[rows]
    correct = gt[rows, best]

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    # extent in original indices, so marks land right whatever was subsampled
    image = ax.imshow(similarity[np.ix_(rows, cols)], aspect="auto", interpolation="nearest",
                      cmap="viridis", extent=(-0.5, n_ref - 0.5, n_query - 0.5, -0.5))
    fig.colorbar(image, ax=ax, label="similarity")
    size = float(np.clip(2000.0 / len(rows), 1.0, 30.0))
    gt_row, gt_col = np.nonzero(gt[rows])
    ax.scatter(gt_col, rows[gt_row], s=size, marker="s", color="white", alpha=0.35,
               linewidths=0, label="ground truth")
    ax.scatter(best[correct], rows[correct], s=size, color="lime", linewidths=0,
               label="best match, correct")
    ax.scatter(best[~correct], rows[~correct], s=size, color="red", linewidths=0,
               label="best match, wrong")
    ax.set_xlim(-0.5, n_ref - 0.5)
    ax.set_ylim(n_query - 0.5, -0.5)
    ax.set_xlabel("reference index")
    ax.set_ylabel("query index")
    # marks shrink with the row count; keep the legend's readable
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7,
              markerscale=max(1.0, (20 / size) ** 0.5))
    note = (f"shown {len(rows)}×{len(cols)} of {n_query}×{n_ref}"
            if (len(rows), len(cols)) != (n_query, n_ref) else "")
    ax.set_title(" — ".join(t for t in (title, note) if t), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- helpers


def _integer(name: str, value, minimum: int, error: type[Exception]) -> int:
    """``value`` as an int >= ``minimum``, else ``error`` (sizes of a ground truth are
    data problems, counts asked of a metric are input problems)."""
    try:
        value = operator.index(value)
    except TypeError:
        raise error(f"{name} must be an integer; got {value!r}") from None
    if value < minimum:
        raise error(f"{name} must be >= {minimum}; got {value}")
    return value


def _as_indices(values, what: str) -> np.ndarray:
    """Integer indices; integral floats pass, since ground-truth CSVs often load as floats."""
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged nesting
        raise DataError(f"{what} must be a flat list of reference indices") from None
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise DataError(f"{what} must hold integer reference indices; got {arr.dtype} values")
    return arr.astype(np.int64, copy=False)


def _match_rows(matches, n_query: int) -> list[np.ndarray]:
    """One 1-D array of reference indices (-1 allowed) per query."""
    if isinstance(matches, np.ndarray):
        if matches.ndim not in (1, 2):
            raise DataError(f"ground-truth matches must be 1-D or 2-D; got shape {matches.shape}")
        arr = _as_indices(matches, "ground-truth matches")
        rows = list(arr[:, None] if arr.ndim == 1 else arr)
    else:
        rows = [np.atleast_1d(_as_indices(m, f"ground-truth matches of query {q}"))
                for q, m in enumerate(matches)]
        for q, row in enumerate(rows):
            if row.ndim != 1:
                raise DataError(f"ground-truth matches of query {q} must be a flat list of "
                                "reference indices")
    if len(rows) != n_query:
        raise DataError(f"ground truth lists matches for {len(rows)} queries but there are "
                        f"{n_query}; give one entry per query (-1 or [] for no match)")
    return rows


def _widen(gt: np.ndarray, k: int) -> np.ndarray:
    """Mark every reference within ±k of a marked one, clipped to the matrix."""
    n_ref = gt.shape[1]
    # a window sum from a running count: O(n_query × n_reference) whatever k is
    count = np.zeros((gt.shape[0], n_ref + 1), dtype=np.int64)
    np.cumsum(gt, axis=1, out=count[:, 1:])
    r = np.arange(n_ref)
    hi = np.minimum(r + k + 1, n_ref)
    lo = np.maximum(r - k, 0)
    return (count[:, hi] - count[:, lo]) > 0


def _check_similarity(similarity: np.ndarray) -> np.ndarray:
    similarity = np.asarray(similarity)
    if similarity.ndim != 2:
        raise InputError("similarity must be a 2-D (n_query, n_reference) matrix; got shape "
                         f"{similarity.shape}")
    if similarity.dtype.kind not in "biuf":
        raise InputError(f"similarity must be numeric; got dtype {similarity.dtype}")
    if similarity.dtype.kind != "f":
        similarity = similarity.astype(np.float64)
    bad = similarity.size - int(np.count_nonzero(np.isfinite(similarity)))
    if bad:
        raise InputError(f"similarity has {bad} NaN or inf values; fix the matcher that "
                         "produced it (e.g. an all-zero image normalised by 0)")
    return similarity


def _check_pair(similarity: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    similarity = _check_similarity(similarity)
    gt = np.asarray(gt)
    if gt.shape != similarity.shape:
        raise InputError(f"ground truth has shape {gt.shape} but similarity {similarity.shape}; "
                         "both must be (n_query, n_reference)")
    if gt.dtype != bool:
        # a float gt of 0.5s would silently become True; only 0/1 is unambiguous
        if gt.dtype.kind not in "iuf" or not np.all((gt == 0) | (gt == 1)):
            raise InputError("ground truth must be boolean (or 0/1); build it with ground_truth()")
        gt = gt.astype(bool)
    return similarity, gt


def _queries_with_match(gt: np.ndarray) -> np.ndarray:
    has_match = gt.any(axis=1)
    if not has_match.any():
        raise DataError("no query has a true match in the ground truth, so recall is undefined; "
                        "check the ground-truth file and tolerance")
    return has_match


def _first_correct_rank(similarity: np.ndarray, gt: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """0-based rank of each query's best-ranked correct reference (every row has one).

    Counts the references ranked ahead of it instead of sorting whole rows, which needs
    no (n_query, n_reference) index array and is O(n_reference) per query.
    """
    n_query, n_ref = similarity.shape
    rank = np.empty(n_query, dtype=np.int64)
    column = np.arange(n_ref)
    for q0 in range(0, n_query, chunk):
        sim, ok = similarity[q0:q0 + chunk], gt[q0:q0 + chunk]
        # the best-ranked correct reference: highest similarity, then lowest index
        target = np.argmax(np.where(ok, sim, -np.inf), axis=1)
        score = sim[np.arange(len(sim)), target][:, None]
        ahead = (sim > score) | ((sim == score) & (column < target[:, None]))
        rank[q0:q0 + chunk] = np.count_nonzero(ahead, axis=1)
    return rank


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _display_index(n: int) -> np.ndarray:
    if n <= _MAX_DISPLAY:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, _MAX_DISPLAY).round().astype(np.int64))


def _pyplot():
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")  # no display on a robot or in CI
    return require("matplotlib.pyplot", "plot")

