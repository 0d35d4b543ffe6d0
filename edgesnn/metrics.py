"""Classification metrics and their plots (matplotlib only for plots: extra ``plot``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from edgesnn.errors import require


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def accuracy(cm: np.ndarray) -> float:
    return float(np.trace(cm) / max(cm.sum(), 1))


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes present in the true labels or the predictions."""
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=present)
    return float(f1[present].mean()) if present.any() else 0.0


def format_confusion(cm: np.ndarray, classes: Sequence[str]) -> str:
    names = [str(c)[:10] for c in classes]
    width = max(6, max(len(n) for n in names) + 1, len(str(cm.max())) + 1)
    lines = [" " * width + "".join(f"{n:>{width}}" for n in names) + "   ← predicted"]
    for name, row in zip(names, cm):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def plot_confusion(matrices: dict[str, np.ndarray], classes: Sequence[str], path: str | Path,
                   title: str = "") -> None:
    """One normalised confusion matrix per backend, side by side, written as PNG."""
    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 4.0), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items()):
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if norm[i, j] > 0.6 else "black", fontsize=9)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: acc {accuracy(cm):.3f}, macro-F1 {macro_f1(cm):.3f}", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
