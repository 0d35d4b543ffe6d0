"""The view-template place module (default): one neuron per remembered *view* of a place.

A module learns the places of its region in one shot (Hebbian imprinting): for every
reference traverse and for a few small viewpoint shifts of it, one template neuron
stores the view as its weights, centred and scaled to unit length:

    w = (v − mean v) / ‖v − mean v‖            v: a shifted reference image
    drive(x) = w · x                           = ‖x − mean x‖ · cos(x, v)

Because w sums to zero, the drive ignores a query's overall brightness, and for one
query all drives share the factor ‖x − mean x‖, so ranking by drive is ranking by
cosine similarity. A place's score in a module is the drive of its best view
neuron (the neuron → place assignment of winner-take-all networks); the shifted views
make that tolerant to the viewpoint changing by a pixel or two between traverses.

Why views and not random features + a delta-rule readout (VPRTempo): on the synthetic
night route, every random-feature design we measured lost to plain SAD, while the max
over a few shifted views beat it clearly (docs/place-recognition.md has the numbers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from edgesnn.errors import InputError, ModelFileError


def _int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class ViewConfig:
    shifts: int = 3        # viewpoint shifts per reference traverse, drawn per seed
    max_shift: int = 1     # shifts come from the (2·max_shift + 1)² pixel neighbourhood
    response_rank: int = 10  # a neuron "responds" to an image when among its system's k most driven

    def __post_init__(self):
        shift_ok = _int(self.max_shift) and self.max_shift >= 0
        limit = (2 * self.max_shift + 1) ** 2 if shift_ok else 0
        checks = {"max_shift": shift_ok, "shifts": _int(self.shifts) and 1 <= self.shifts <= limit,
                  "response_rank": _int(self.response_rank) and self.response_rank >= 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            listed = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise InputError(f"invalid view-module settings: {listed} (shifts: 1 to "
                             "(2·max_shift + 1)², the pixel offsets that exist)")

    def to_metadata(self) -> dict:
        return asdict(self)

    @classmethod
    def from_metadata(cls, data: dict) -> "ViewConfig":
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            raise ModelFileError(f"view-module settings must be a mapping with keys from {sorted(names)}")
        try:
            return cls(**data)
        except (InputError, TypeError) as exc:
            raise ModelFileError(f"bad view-module settings in the model file: {exc}") from None


@dataclass
class ViewModule:
    weight: np.ndarray  # (views, places, pixels) float32, rows centred and unit-length

    def drive(self, x: np.ndarray) -> np.ndarray:
        """(N, pixels) → (N, views, places) template-neuron drives."""
        views, places, pixels = self.weight.shape
        return (x @ self.weight.reshape(-1, pixels).T).reshape(len(x), views, places)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, pixels) → (N, places): each place's best view."""
        return self.drive(x).max(axis=1)


def shift_images(x: np.ndarray, shape: tuple[int, int], dy: int, dx: int) -> np.ndarray:
    """(N, h·w) images seen from ``dy``, ``dx`` pixels further (edges replicated)."""
    h, w = shape
    r = max(abs(dy), abs(dx))
    padded = np.pad(x.reshape(-1, h, w), ((0, 0), (r, r), (r, r)), mode="edge")
    return padded[:, r + dy:r + dy + h, r + dx:r + dx + w].reshape(len(x), h * w)


def train_view_module(images: np.ndarray, shape: tuple[int, int], config: ViewConfig = ViewConfig(),
                      seed: int | np.random.SeedSequence = 0) -> ViewModule:
    """Imprint one region: ``images`` (traverses, places, pixels), the same places in the
    same order in every traverse. Each traverse gets ``config.shifts`` distinct shifts."""
    images = check_images(images, shape)
    rng = np.random.default_rng(seed)
    m = config.max_shift
    offsets = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
    views = []
    for traverse in images:
        for k in rng.choice(len(offsets), config.shifts, replace=False):
            v = shift_images(traverse, shape, *offsets[k]).astype(np.float64)
            v -= v.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(v, axis=1, keepdims=True)
            # a flat view (no structure at all) cannot be told from any other: silent neuron
            views.append(np.divide(v, norm, out=np.zeros_like(v), where=norm > 1e-9))
    return ViewModule(np.stack(views).astype(np.float32))


def check_images(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Training images as float32 (traverses, places, pixels), or a clear InputError."""
    images = np.asarray(images)
    if images.ndim != 3 or 0 in images.shape:
        raise InputError(f"training images must be shaped (traverses, places, pixels); got {images.shape}")
    if images.shape[2] != shape[0] * shape[1]:
        raise InputError(f"training images have {images.shape[2]} pixels; the image size "
                         f"{shape[0]}x{shape[1]} needs {shape[0] * shape[1]}")
    images = images.astype(np.float32, copy=False)
    if not np.all(np.isfinite(images)):
        raise InputError("training images contain NaN or Inf")
    return images
