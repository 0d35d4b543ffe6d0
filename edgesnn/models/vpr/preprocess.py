"""Image preprocessing for visual place recognition (VPR): camera frame → feature vector.

The chain, after VPRTempo: grey → gamma towards mid grey → small image (area
average) → patch normalisation → values in [0, 1], one row per image. Local
contrast normalisation is what makes a place look the same at noon and at dusk,
so a tiny network can compare places by pixel intensities.

numpy only, and every step works on a whole batch ``(N, H, W)`` at once: there is
no Python loop over images or pixels, so a folder of frames is preprocessed at
array speed. A :class:`Preprocessing` records the settings in a model file so a
query is prepared exactly like the training images.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edgesnn.errors import InputError, ModelFileError

__all__ = ["to_grey", "gamma_correct", "resize", "patch_normalise", "preprocess",
           "Preprocessing", "LUMA_WEIGHTS"]

# ITU-R 601 luma, the weights of Pillow's convert("L"), so a grey image read by
# Pillow and a colour image converted here agree (up to Pillow's integer rounding).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_MID_GREY = 127.5
# Outside this band of image means the gamma rule is undefined (log of a mean <= 1
# is <= 0) or would only amplify noise in a nearly saturated frame.
_GAMMA_MIN_MEAN, _GAMMA_MAX_MEAN = 1.0, 254.0


def to_grey(images: np.ndarray) -> np.ndarray:
    """Grey levels ``(N, H, W)`` float32 in the input's 0..255 scale.

    ``images``: ``(N, H, W)`` grey, ``(N, H, W, 1)`` grey, ``(N, H, W, 3)`` RGB or
    ``(N, H, W, 4)`` RGBA (alpha is ignored), uint8 or float.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        return images.astype(np.float32)
    if images.ndim == 4 and images.shape[3] == 1:
        return images[..., 0].astype(np.float32)
    if images.ndim == 4 and images.shape[3] in (3, 4):
        # channel by channel: no float copy of the whole colour batch
        r, g, b = (np.float32(v) for v in LUMA_WEIGHTS)
        grey = images[..., 0] * r
        grey += images[..., 1] * g
        grey += images[..., 2] * b
        return grey.astype(np.float32, copy=False)
    raise InputError(f"images must be shaped (N, H, W) or (N, H, W, 1|3|4 channels), "
                     f"got shape {images.shape}")


def gamma_correct(grey: np.ndarray) -> np.ndarray:
    """Move each image's mean towards mid grey: ``x ** γ`` with ``γ = ln 127.5 / ln mean``.

    ``grey``: ``(N, H, W)`` in 0..255. γ is computed per image from that image's
    mean; results are clipped to 0..255 (VPRTempo's rule, without its rounding to
    uint8). Images whose mean is <= 1 or >= 254 — nearly black or white, where γ is
    undefined or only amplifies noise — are returned unchanged. float32.
    """
    grey = _as_batch(grey, "grey")
    x = grey.astype(np.float32)  # float32 power: five times faster than float64 on frames
    mean = x.mean(axis=(1, 2), dtype=np.float64)
    ok = (mean > _GAMMA_MIN_MEAN) & (mean < _GAMMA_MAX_MEAN)
    # an exponent of exactly 1 leaves the skipped images bit-for-bit unchanged
    gamma = np.ones_like(mean)
    gamma[ok] = math.log(_MID_GREY) / np.log(mean[ok])
    out = np.power(x, gamma.astype(np.float32)[:, None, None])
    return np.clip(out, 0.0, 255.0, out=out)


@lru_cache(maxsize=64)
def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: row i = fraction of output pixel i covered by each input.

    Measured in units of ``1 / (n_in * n_out)`` pixel widths, input pixel j spans
    ``[j·n_out, (j+1)·n_out)`` and output pixel i spans ``[i·n_in, (i+1)·n_in)``, so
    the overlaps are exact integers and every row sums to exactly ``n_in``.
    """
    i = np.arange(n_out)[:, None]
    j = np.arange(n_in)[None, :]
    overlap = (np.minimum((i + 1) * n_in, (j + 1) * n_out)
               - np.maximum(i * n_in, j * n_out)).clip(min=0)
    weights = overlap / n_in
    weights.flags.writeable = False  # shared through the cache
    return weights


def resize(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Area-averaging resize of ``(N, H, W)`` to ``(N, size[0], size[1])``, float32.

    Each output pixel is the mean of the input area it covers, partly covered input
    pixels weighted by the covered fraction — no aliasing when shrinking a camera
    frame to a few hundred pixels. Computed as ``R_h @ img @ R_w.T`` with cached
    per-axis weight matrices. When enlarging, an output pixel inside one input pixel
    copies it and one straddling a boundary mixes the two by overlap (box weights,
    no smoothing), which is all the rule means there.
    """
    grey = _as_batch(grey, "grey")
    h, w = _check_size(size, InputError)
    n, h_in, w_in = grey.shape
    rows = _area_matrix(h_in, h)
    cols = _area_matrix(w_in, w)
    # Width first, as one 2-D product (a single BLAS call over all rows of all images),
    # then the much smaller height product. float64 so equal input pixels stay equal
    # enough for patch_normalise to see a flat window as flat.
    narrow = (grey.reshape(n * h_in, w_in).astype(np.float64) @ cols.T).reshape(n, h_in, w)
    return (rows @ narrow).astype(np.float32)


def patch_normalise(grey: np.ndarray, patch: int = 7) -> np.ndarray:
    """Local contrast normalisation of ``(N, H, W)``, values in [0, 1], float32.

    Every pixel becomes ``(x − μ) / σ`` clipped to [−1, 1] and mapped to [0, 1],
    with μ and σ (population std) of the ``patch × patch`` window centred on it.
    At the borders the window holds only the pixels inside the image (as if padded
    with NaN and reduced with nanmean/nanstd). A flat window (σ = 0) gives 0.5.
    """
    grey = _as_batch(grey, "grey")
    patch = _check_patch(patch, InputError)
    _, h, w = grey.shape
    x = grey.astype(np.float64)
    # Subtracting each image's mean keeps the summed-area tables small, which is
    # what limits the rounding error of E[x²] − E[x]².
    x = x - x.mean(axis=(1, 2), keepdims=True)
    r0, r1 = _window_bounds(h, patch)
    c0, c1 = _window_bounds(w, patch)
    count = (r1 - r0)[:, None] * (c1 - c0)[None, :]  # pixels inside each clipped window
    sums = _window_sums(x, r0, r1, c0, c1)
    squares = _window_sums(x * x, r0, r1, c0, c1)
    mean = sums / count
    var = np.maximum(squares / count - mean * mean, 0.0)
    # Differences of the tables' large entries carry rounding noise up to about
    # eps·(H+W)·(sum of x²); a variance below that is a flat window, not signal.
    noise = 4 * np.finfo(np.float64).eps * (h + w) * (x * x).sum(axis=(1, 2))[:, None, None]
    flat = var * count <= noise
    std = np.sqrt(np.where(flat, 1.0, var))
    z = np.where(flat, 0.0, np.clip((x - mean) / std, -1.0, 1.0))
    return ((z + 1.0) / 2.0).astype(np.float32)


def _window_bounds(n: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last index of each centred window, clipped to the image."""
    half = patch // 2
    centre = np.arange(n)
    return np.maximum(centre - half, 0), np.minimum(centre + half + 1, n)


def _window_sums(x: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray,
                 c1: np.ndarray) -> np.ndarray:
    """Sum of ``x`` over every window from a summed-area table with a zero first row/col."""
    n, h, w = x.shape
    table = np.zeros((n, h + 1, w + 1))
    table[:, 1:, 1:] = x.cumsum(axis=1).cumsum(axis=2)
    r0, r1 = r0[:, None], r1[:, None]
    c0, c1 = c0[None, :], c1[None, :]
    return table[:, r1, c1] - table[:, r0, c1] - table[:, r1, c0] + table[:, r0, c0]


def preprocess(images: np.ndarray, size: tuple[int, int] = (28, 28), patch: int = 7,
               gamma: bool = True) -> np.ndarray:
    """Feature vectors ``(N, size[0]·size[1])`` float32 in [0, 1] for a batch of images.

    grey → gamma (optional) → :func:`resize` → :func:`patch_normalise` → flatten.
    ``images``: a batch ``(N, H, W)`` or ``(N, H, W, 1|3|4)``, or one image
    ``(H, W)`` or ``(H, W, 1|3|4)``, in 0..255 (uint8 or float). A 3-D array whose
    last axis has 1, 3 or 4 entries is read as one image; pass a batch of such
    narrow grey images as ``(N, H, W, 1)``.
    """
    h, w = _check_size(size, InputError)
    patch = _check_patch(patch, InputError)
    if patch > min(h, w):
        raise InputError(f"patch {patch} is larger than the {h}x{w} output image; "
                         f"use a smaller patch or a larger size")
    images = _check_images(images)
    grey = to_grey(images)
    if gamma:
        grey = gamma_correct(grey)
    small = resize(grey, (h, w))
    return patch_normalise(small, patch).reshape(len(small), h * w)


def _check_images(images: Any) -> np.ndarray:
    """A validated batch (single images get a batch axis)."""
    try:
        images = np.asarray(images)
    except ValueError:  # a list of arrays of different shapes
        raise InputError("images of different sizes cannot form one batch; "
                         "preprocess them separately or resize them first") from None
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number) \
            or np.issubdtype(images.dtype, np.complexfloating):
        raise InputError(f"images must hold real numbers 0..255, got dtype {images.dtype}")
    if images.ndim == 2 or (images.ndim == 3 and images.shape[2] in (1, 3, 4)):
        images = images[None]
    if images.ndim not in (3, 4):
        raise InputError(f"images must be one image (H, W) or (H, W, C), or a batch "
                         f"(N, H, W) or (N, H, W, C); got shape {images.shape}")
    if images.ndim == 4 and images.shape[3] not in (1, 3, 4):
        raise InputError(f"images must have 1, 3 or 4 colour channels, got "
                         f"{images.shape[3]} (shape {images.shape})")
    if images.shape[0] == 0:
        raise InputError("no images: the batch is empty")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise InputError(f"images have no pixels: shape {images.shape}")
    if np.issubdtype(images.dtype, np.floating):
        finite = np.isfinite(images).reshape(len(images), -1).all(axis=1)
        if not finite.all():
            raise InputError(f"image {int(np.argmin(finite))} contains NaN or Inf "
                             f"({int((~finite).sum())} such image(s))")
    if not np.issubdtype(images.dtype, np.unsignedinteger):
        negative = (images < 0).reshape(len(images), -1).any(axis=1)
        if negative.any():
            raise InputError(f"image {int(np.argmax(negative))} has negative values; "
                             f"pixels must be 0..255")
    return images


def _as_batch(grey: Any, name: str) -> np.ndarray:
    grey = np.asarray(grey)
    if grey.ndim != 3:
        raise InputError(f"{name} must be a batch of grey images (N, H, W), got shape {grey.shape}")
    if 0 in grey.shape:
        raise InputError(f"{name} has no data: shape {grey.shape}")
    return grey


def _check_size(size: Any, error: type[Exception]) -> tuple[int, int]:
    try:
        h, w = (_integer(v) for v in size)
    except (TypeError, ValueError):
        raise error(f"size must be two whole numbers (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise error(f"size must be at least 1x1 pixels, got {h}x{w}")
    return h, w


def _check_patch(patch: Any, error: type[Exception]) -> int:
    try:
        p = _integer(patch)
    except TypeError:
        raise error(f"patch must be an odd whole number, got {patch!r}") from None
    if p < 1 or p % 2 == 0:
        raise error(f"patch must be odd and >= 1 (the window is centred on a pixel), got {p}")
    return p


def _integer(v: Any) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("a bool is not a size")
    return operator.index(v)


@dataclass(frozen=True)
class Preprocessing:
    """The preprocessing settings of a VPR model; call it on images to get features.

    Stored in the model file (:meth:`to_metadata`) so queries are prepared exactly
    like the reference images the model was trained on.
    """

    size: tuple[int, int] = (28, 28)
    patch: int = 7
    gamma: bool = True

    def __post_init__(self) -> None:
        h, w = _check_size(self.size, InputError)
        patch = _check_patch(self.patch, InputError)
        if patch > min(h, w):
            raise InputError(f"patch {patch} is larger than the {h}x{w} output image")
        if not isinstance(self.gamma, (bool, np.bool_)):
            raise InputError(f"gamma must be True or False, got {self.gamma!r}")
        # normalised so equal settings compare and hash equal (a list size, numpy ints)
        object.__setattr__(self, "size", (h, w))
        object.__setattr__(self, "patch", patch)
        object.__setattr__(self, "gamma", bool(self.gamma))

    @property
    def features(self) -> int:
        """Length of one feature vector."""
        return self.size[0] * self.size[1]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features ``(N, features)`` float32 in [0, 1]; see :func:`preprocess`."""
        return preprocess(images, self.size, self.patch, self.gamma)

    def to_metadata(self) -> dict:
        """A JSON-able dict for a model file's metadata."""
        return {"size": list(self.size), "patch": self.patch, "gamma": self.gamma}

    @classmethod
    def from_metadata(cls, d: Any) -> Preprocessing:
        """Settings read back from a model file; ModelFileError when they are unusable."""
        if not isinstance(d, dict):
            raise ModelFileError(f"preprocessing metadata must be a mapping, "
                                 f"got {type(d).__name__}")
        expected = {"size", "patch", "gamma"}
        missing = sorted(expected - set(d))
        if missing:
            raise ModelFileError(f"preprocessing metadata lacks {', '.join(missing)}")
        unknown = sorted(map(str, set(d) - expected))
        if unknown:  # a setting this version cannot reproduce: refuse rather than guess
            raise ModelFileError(f"preprocessing metadata has unknown keys {', '.join(unknown)}; "
                                 f"was the model written by a newer edgesnn?")
        size, patch, gamma = d["size"], d["patch"], d["gamma"]
        if not isinstance(size, (list, tuple)) or len(size) != 2 \
                or not all(type(v) is int for v in size):
            raise ModelFileError(f"preprocessing size must be two integers, got {size!r}")
        if type(patch) is not int:
            raise ModelFileError(f"preprocessing patch must be an integer, got {patch!r}")
        if not isinstance(gamma, bool):
            raise ModelFileError(f"preprocessing gamma must be true or false, got {gamma!r}")
        try:
            return cls(tuple(size), patch, gamma)
        except InputError as exc:
            raise ModelFileError(f"preprocessing metadata: {exc}") from None
