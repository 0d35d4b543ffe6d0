"""The fast place module (after VPRTempo): one feature layer of threshold neurons and one
output neuron per place, each inference two matrix products.

    drive  = W x − θ                     W: (features, pixels), sparse and signed
    spikes = [drive > 0]                 one step, binary
    score  = R spikes                    R: (places, features), one row per place

Feature layer (unsupervised). Each feature neuron connects to a fraction ``density``
of the pixels, excitatory (+) or inhibitory (−), drawn from a spatially smooth random
field so that neighbouring pixels share a sign: a neuron sums small image regions
instead of single pixels, which makes it tolerant to a pixel of viewpoint shift and
to sensor noise. Its threshold θ follows the homeostatic rule "fire on a fraction
``rate`` of the region's images"; we set θ to that rule's fixed point directly (the
(1 − rate) quantile of the neuron's drive over the training images).

Output layer (supervised, delta rule). For every training image of place p the target
is one-hot at p; R moves by η (target − score) spikesᵀ / |spikes| (normalised by the
number of active features, so the step size does not depend on the firing rate), in
shuffled mini-batches, η annealed linearly to zero over the epochs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from edgesnn.errors import InputError, ModelFileError


@dataclass(frozen=True)
class FastConfig:
    features: int = 1568          # feature neurons per module (2 × 784, as VPRTempo)
    density: float = 0.3          # fraction of pixels each feature neuron connects to
    smoothing: float = 1.0        # pixels: spatial correlation of a receptive field's sign
    rate: float = 0.5             # homeostatic firing fraction of a feature neuron
    epochs: int = 4
    learning_rate: float = 0.5
    batch: int = 32
    response: float = 0.5         # a place neuron "responds" to an image above this score

    def __post_init__(self):
        checks = {"features": self.features >= 1, "density": 0 < self.density <= 1,
                  "smoothing": self.smoothing >= 0, "rate": 0 < self.rate < 1,
                  "epochs": self.epochs >= 1, "learning_rate": self.learning_rate > 0,
                  "batch": self.batch >= 1, "response": np.isfinite(self.response)}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            listed = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise InputError(f"invalid fast-module settings: {listed}")

    def to_metadata(self) -> dict:
        return asdict(self)

    @classmethod
    def from_metadata(cls, data: dict) -> "FastConfig":
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            raise ModelFileError(f"fast-module settings must be a mapping with keys from {sorted(names)}")
        try:
            return cls(**data)
        except (InputError, TypeError) as exc:
            raise ModelFileError(f"bad fast-module settings in the model file: {exc}") from None


@dataclass
class FastModule:
    weight: np.ndarray     # (features, pixels) float32
    threshold: np.ndarray  # (features,) float32
    readout: np.ndarray    # (places, features) float32

    def spikes(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.weight.T > self.threshold).astype(np.float32)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, pixels) → (N, places) place-neuron outputs."""
        return self.spikes(x) @ self.readout.T


def receptive_fields(rng: np.random.Generator, features: int, shape: tuple[int, int],
                     density: float, smoothing: float) -> np.ndarray:
    """Sparse signed weights (features, h·w): the strongest ``density`` fraction of a
    Gaussian-smoothed random field, keeping its sign; each row has unit norm."""
    h, w = shape
    field = rng.normal(0.0, 1.0, (features, h, w))
    if smoothing > 0:
        field = _gaussian_matrix(h, smoothing) @ field @ _gaussian_matrix(w, smoothing).T
    field = field.reshape(features, h * w)
    keep = max(1, int(round(density * h * w)))
    cut = -np.partition(-np.abs(field), keep - 1, axis=1)[:, keep - 1:keep]
    weight = np.where(np.abs(field) >= cut, np.sign(field), 0.0)
    return (weight / np.linalg.norm(weight, axis=1, keepdims=True)).astype(np.float32)


def train_fast_module(images: np.ndarray, shape: tuple[int, int], config: FastConfig = FastConfig(),
                      seed: int | np.random.SeedSequence = 0) -> FastModule:
    """Learn one region: ``images`` (traverses, places, pixels) in [0, 1], the same places
    in the same order in every traverse."""
    images = check_images(images, shape)
    rng = np.random.default_rng(seed)
    traverses, places, pixels = images.shape
    weight = receptive_fields(rng, config.features, shape, config.density, config.smoothing)
    data = images.reshape(-1, pixels)
    labels = np.tile(np.arange(places), traverses)
    threshold = np.quantile(data @ weight.T, 1.0 - config.rate, axis=0).astype(np.float32)
    spikes = (data @ weight.T > threshold).astype(np.float32)
    active = np.maximum(spikes.sum(axis=1), 1.0)
    readout = np.zeros((places, config.features), np.float32)
    for epoch in range(config.epochs):
        eta = config.learning_rate * (1.0 - epoch / config.epochs)
        order = rng.permutation(len(data))
        for start in range(0, len(order), config.batch):
            b = order[start:start + config.batch]
            error = -(spikes[b] @ readout.T)
            error[np.arange(len(b)), labels[b]] += 1.0
            readout += (eta / len(b)) * (error / active[b, None]).T @ spikes[b]
    return FastModule(weight, threshold, readout)


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


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    a = np.arange(n)
    k = np.exp(-((a[:, None] - a[None, :]) ** 2) / (2.0 * sigma**2))
    return k / k.sum(axis=1, keepdims=True)
