"""A seeded synthetic route: one long drive past distinct places, seen under several
appearance conditions, for training and evaluating place recognition without a dataset.

The world is a panorama strip (rows × route length) of labelled surfaces — sky,
building facades with windows, trees, vegetation, poles with lamps, road with lane
marks — generated once per seed. Place ``i`` is the 64-pixel-wide view starting at
column ``i·step`` (neighbouring places overlap a little, as frames of a real route
do). A *condition* re-lights the surfaces (per-surface brightness and contrast,
night lights, snow, a colour tint) and a *traverse* adds what changes on every
drive: clouds, a few pixels of viewpoint shift, blur and sensor noise. The
same place therefore looks different in every traverse, most of all at night,
when façades are dark under a faint city-glow sky, windows and lamps glow, headlights
light the road and the image is noisy.

Reference and query traverses share place order, so query ``i`` matches reference
``i`` (use a tolerance of ±k places for near misses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgesnn.errors import InputError

# surface labels of the panorama
SKY, FACADE, WINDOW, TREE, VEGETATION, ROAD, MARK, POLE, LAMP = range(9)
HEIGHT, WIDTH = 64, 64
STEP = 44  # panorama columns between consecutive places (views overlap by 20 columns)


@dataclass(frozen=True)
class Condition:
    """How a traverse re-lights the world. Brightness per surface is ``gain·albedo +
    offset`` before the global gamma; ``windows_lit`` is the fraction of windows
    (fixed per route) that glow; noise is the standard deviation on a 0–1 scale."""

    sky: float
    gain: float
    offset: float
    gamma: float
    clouds: float
    tint: tuple[float, float, float]
    blur: int = 0          # box-blur radius in pixels
    noise: float = 0.01
    shift: int = 2         # max viewpoint shift in pixels (horizontal; vertical is 1/2)
    snow: float = 0.0      # fraction of ground and tree surfaces covered white
    windows_lit: float = 0.0
    lamps: float = 0.0     # lamp brightness (glow added around each lamp)
    headlights: float = 0.0


CONDITIONS: dict[str, Condition] = {
    "day": Condition(sky=0.85, gain=1.0, offset=0.0, gamma=1.0, clouds=0.25,
                     tint=(1.0, 1.0, 0.95)),
    "overcast": Condition(sky=0.7, gain=0.7, offset=0.12, gamma=1.1, clouds=0.1,
                          tint=(0.95, 0.97, 1.0), blur=1, noise=0.02),
    "dusk": Condition(sky=0.45, gain=0.55, offset=0.02, gamma=1.6, clouds=0.3,
                      tint=(1.1, 0.85, 0.7), noise=0.03, windows_lit=0.15, lamps=0.5),
    "snow": Condition(sky=0.9, gain=0.9, offset=0.05, gamma=0.9, clouds=0.1,
                      tint=(0.95, 1.0, 1.05), blur=1, noise=0.02, snow=0.8),
    # the sky glows above the city (brighter than the unlit façades, as in urban night
    # photos); a black sky would invert the skyline, which no appearance-based method
    # survives
    "night": Condition(sky=0.30, gain=0.3, offset=0.0, gamma=1.5, clouds=0.0,
                       tint=(1.0, 0.9, 0.75), blur=1, noise=0.06, shift=3, windows_lit=0.35,
                       lamps=1.0, headlights=0.4),
}
REFERENCE_CONDITIONS = ("day", "overcast")
QUERY_CONDITIONS = ("dusk", "snow", "night")
HARDEST = "night"


@dataclass(frozen=True)
class World:
    """The route's panorama: surface labels, albedo and per-window night lights."""

    labels: np.ndarray   # (HEIGHT, length) uint8
    albedo: np.ndarray   # (HEIGHT, length) float32 in [0, 1]
    lit_rank: np.ndarray  # (HEIGHT, length) float32: a window glows when rank < windows_lit
    places: int


def make_world(places: int, seed: int = 0) -> World:
    """Generate the panorama of a route with ``places`` places."""
    if isinstance(places, bool) or not isinstance(places, (int, np.integer)) or places < 1:
        raise InputError(f"places must be a positive integer; got {places!r}")
    rng = np.random.default_rng([seed, 0])
    length = int(places) * STEP + WIDTH + 8
    cols = np.arange(length)
    rows = np.arange(HEIGHT)[:, None]
    horizon = (40 + 3 * _smooth_noise(rng, length, 90)).round().astype(int)

    labels = np.full((HEIGHT, length), SKY, np.uint8)
    albedo = np.zeros((HEIGHT, length), np.float32)
    lit_rank = np.ones((HEIGHT, length), np.float32)

    # skyline: a sequence of buildings and tree clumps of random width and height
    start = 0
    while start < length:
        width = int(rng.integers(8, 34))
        seg = slice(start, min(start + width, length))
        if rng.random() < 0.6:  # a building
            top = horizon[seg] - int(rng.integers(8, 34))
            body = (rows >= top) & (rows < horizon[seg])
            labels[:, seg][body] = FACADE
            albedo[:, seg][body] = rng.uniform(0.25, 0.8)
            pitch, first = int(rng.integers(4, 7)), int(rng.integers(1, 3))
            c = cols[seg][None, :] - start
            window = body & ((rows - top) % pitch >= first) & ((rows - top) % pitch < first + 2) \
                & (c % pitch >= 1) & (c % pitch < 3) & (rows < horizon[seg] - 2)
            labels[:, seg][window] = WINDOW
            albedo[:, seg][window] = rng.uniform(0.05, 0.3)
            block = ((rows - top) // pitch) * 97 + c // pitch
            lit_rank[:, seg][window] = _hash_uniform(seed, start, block)[window]
        else:  # trees: a bumpy crown
            n = seg.stop - seg.start
            crown = horizon[seg] - (rng.uniform(4, 16) * np.sin(np.linspace(0.2, np.pi - 0.2, n))
                                    + rng.normal(0, 1.0, n)).round().astype(int)
            body = (rows >= crown) & (rows < horizon[seg])
            labels[:, seg][body] = TREE
            albedo[:, seg][body] = (0.3 + 0.25 * rng.random((HEIGHT, n)))[body]
        start += width + int(rng.integers(0, 10))

    # ground: vegetation between horizon and road, road with dashed lane marks
    road_top = HEIGHT - 14
    ground = (rows >= horizon) & (rows < road_top)
    texture = 0.35 + 0.3 * _smooth_field(rng, HEIGHT, length, 6)
    labels[ground] = VEGETATION
    albedo[ground] = np.clip(texture, 0, 1)[ground]
    labels[road_top:] = ROAD
    albedo[road_top:] = 0.42
    mark = (rows >= HEIGHT - 6) & (rows < HEIGHT - 4) & ((cols % 24) < 12)
    labels[mark] = MARK
    albedo[mark] = 0.9

    # poles with lamps at random positions
    for x in np.flatnonzero(rng.random(length) < 1 / 30):
        top = horizon[x] - int(rng.integers(14, 26))
        labels[top:road_top, x] = POLE
        albedo[top:road_top, x] = 0.15
        labels[top:top + 2, max(x - 1, 0):x + 2] = LAMP
        albedo[top:top + 2, max(x - 1, 0):x + 2] = 0.6
    return World(labels, albedo, lit_rank, int(places))


def render(world: World, condition: str | Condition, seed: int = 0,
           places: slice | None = None) -> np.ndarray:
    """Views of the places under one condition: uint8 RGB (places, HEIGHT, WIDTH, 3).
    ``seed`` picks the traverse's clouds, viewpoint shifts and noise."""
    cond = CONDITIONS[condition] if isinstance(condition, str) else condition
    idx = np.arange(world.places)[places if places is not None else slice(None)]
    rng = np.random.default_rng([seed, 1, int(idx[0]) if len(idx) else 0])
    n = len(idx)
    lab, alb = world.labels, world.albedo

    # re-light the surfaces
    ground = (lab == VEGETATION) | (lab == TREE)
    snow = ground & (_hash_uniform(seed, 7, np.arange(lab.size).reshape(lab.shape)) < cond.snow)
    light = cond.gain * alb + cond.offset
    light = np.where(snow, 0.92, light)
    light = np.where(lab == SKY, cond.sky, light)
    lit = (lab == WINDOW) & (world.lit_rank < cond.windows_lit)
    light = np.where(lit, 0.95, light)
    if cond.lamps:
        light = np.where(lab == LAMP, cond.lamps, light)

    # crop the views with a per-traverse viewpoint shift
    dx = rng.integers(-cond.shift, cond.shift + 1, n)
    dy = rng.integers(-(cond.shift // 2), cond.shift // 2 + 1, n)
    x0 = 4 + idx * STEP + dx
    col = x0[:, None] + np.arange(WIDTH)
    row = np.clip(np.arange(HEIGHT)[None, :] + dy[:, None], 0, HEIGHT - 1)
    views = light[row[:, :, None], col[:, None, :]].astype(np.float32)
    sky = lab[row[:, :, None], col[:, None, :]] == SKY

    if cond.clouds:
        clouds = np.stack([_smooth_field(rng, HEIGHT, WIDTH, 4) for _ in range(n)])
        views = np.where(sky, views + cond.clouds * (clouds - 0.5), views)
    if cond.lamps:
        glow = _box_blur((views >= cond.lamps - 1e-6) & ~sky, 3).astype(np.float32)
        views = views + 0.6 * cond.lamps * glow
    if cond.headlights:
        y = np.linspace(-1, 1, HEIGHT)[:, None]
        x = np.linspace(-1, 1, WIDTH)[None, :]
        cone = np.clip(1.2 * y - 0.2, 0, 1) * np.exp(-(x / (0.4 + 0.5 * np.clip(y, 0, 1))) ** 2)
        views = views + cond.headlights * cone.astype(np.float32)
    views = np.clip(views, 0, 1) ** cond.gamma
    if cond.blur:
        views = _box_blur(views, cond.blur)
    views = views + rng.normal(0, cond.noise, views.shape).astype(np.float32)
    rgb = np.clip(views[..., None] * np.asarray(cond.tint, np.float32), 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def write_dataset(out: str | Path, places: int, seed: int = 0,
                  reference: Sequence[str] = REFERENCE_CONDITIONS,
                  query: Sequence[str] = QUERY_CONDITIONS) -> Path:
    """Write the route as a dataset folder (``reference/<condition>/``,
    ``query/<condition>/``, PNG files named by place) and return its path."""
    from edgesnn.errors import require

    image = require("PIL.Image", "vpr")
    out = Path(out)
    world = make_world(places, seed)
    for part, names in (("reference", reference), ("query", query)):
        for k, name in enumerate(names):
            if name not in CONDITIONS:
                raise InputError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}")
            folder = out / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, view in enumerate(render(world, name, seed=traverse_seed(seed, part, k))):
                image.fromarray(view).save(folder / f"{i:05d}.png")
    return out


def reference_traverses(world: World, seed: int, preprocessing) -> np.ndarray:
    """Features (traverses, places, features) of the reference traverses that
    ``write_dataset`` writes for this world and seed, without going through files."""
    return np.stack([preprocessing(render(world, name, seed=traverse_seed(seed, "reference", k)))
                     for k, name in enumerate(REFERENCE_CONDITIONS)])


def traverse_seed(seed: int, part: str, k: int) -> int:
    """A distinct, reproducible seed for the k-th reference or query traverse."""
    return seed * 1000 + (0 if part == "reference" else 500) + k


# ------------------------------------------------------------------------ noise helpers

def _smooth_noise(rng: np.random.Generator, length: int, scale: int) -> np.ndarray:
    """1-D noise in about [-1, 1] varying over ``scale`` samples (linear interpolation)."""
    knots = rng.uniform(-1, 1, length // scale + 2)
    return np.interp(np.arange(length) / scale, np.arange(len(knots)), knots)


def _smooth_field(rng: np.random.Generator, height: int, width: int, scale: int) -> np.ndarray:
    """2-D value noise in [0, 1] with features of about ``scale`` pixels (bilinear)."""
    knots = rng.random((height // scale + 2, width // scale + 2))
    y = np.arange(height) / scale
    x = np.arange(width) / scale
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = knots[y0][:, x0] * (1 - fx) + knots[y0][:, x0 + 1] * fx
    bottom = knots[y0 + 1][:, x0] * (1 - fx) + knots[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _hash_uniform(seed: int, salt: int, index: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per integer index (splitmix-style hash),
    so per-window choices do not depend on rendering order."""
    z = (np.asarray(index, np.uint64) + np.uint64(seed * 7919 + salt * 104729)) \
        * np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(31)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(29)
    return (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)


def _box_blur(images: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window (edges replicated), on the last two axes."""
    x = images.astype(np.float32)
    k = 2 * radius + 1
    for axis in (-2, -1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(x, pad, mode="edge"), axis=axis, dtype=np.float64)
        hi = np.take(c, np.arange(k, c.shape[axis]), axis=axis)
        lo = np.take(c, np.arange(0, c.shape[axis] - k), axis=axis)
        x = ((hi - lo) / k).astype(np.float32)
    return x
