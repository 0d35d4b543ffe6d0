"""Image folders for visual place recognition (VPR): reference traverses, queries, ground truth.

Dataset layout::

    DATASET/
      reference/            the reference traverse: one image per place, in place order
        frame1.png ...
      query/                query images, matched against the reference places
        0001.jpg ...
      ground_truth.csv      optional: which reference place(s) each query shows

``reference/`` may instead hold one subfolder per reference traverse (e.g.
``reference/spring/``, ``reference/fall/``), each with the same number of images
in the same place order: image k of every traverse shows place k. Traverses are
taken in subfolder name order. A query folder can be given on its own.

Images are the files directly in a folder whose suffix is one of
:data:`IMAGE_SUFFIXES` (any letter case), in natural name order (``frame2``
before ``frame10``), so the place order follows the frame numbering whether or
not the numbers are zero-padded. Hidden files (names starting with ".", such as
the "._frame1.jpg" copies macOS leaves on USB drives) are skipped.

The ground-truth CSV has a header row with columns ``query`` and ``reference``
and one row per correct pair (a query may have several rows): ``query`` is a
query index or file name, ``reference`` a reference place index (0-based).

Reading images needs Pillow: ``pip install 'edgesnn[vpr]'``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from edgesnn.errors import DataError, InputError, require
from edgesnn.models.vpr.preprocess import Preprocessing

__all__ = ["IMAGE_SUFFIXES", "list_images", "load_images", "load_reference", "load_query",
           "read_ground_truth"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")

_PROGRESS_MIN = 200  # below this a folder loads in moments; a bar would only flicker
# Also cap a batch by pixels: 256 full-HD frames would need gigabytes of float copies.
_BATCH_PIXELS = 1 << 24


def _natural_key(name: str) -> tuple[list, str]:
    """Sort key comparing digit runs as numbers; the name itself breaks ties
    (``frame2`` vs ``frame02``) so the order never depends on the file system."""
    parts = re.split(r"(\d+)", name.lower())
    # split() alternates text and digit runs, so equal positions hold equal types
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _is_image(path: Path) -> bool:
    return _visible(path) and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    return folder


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, in natural name order."""
    folder = _folder(folder)
    images = [p for p in folder.iterdir() if _is_image(p)]
    if not images:
        raise DataError(f"{folder}: no images (files ending in {', '.join(IMAGE_SUFFIXES)})")
    return sorted(images, key=lambda p: _natural_key(p.name))


def load_images(paths: Sequence[str | Path], preprocessing: Preprocessing,
                batch: int = 256) -> np.ndarray:
    """Features ``(N, preprocessing.features)`` float32 of the image files, in order.

    Files are read as RGB and preprocessed in batches of consecutive images of equal
    size (a folder may mix sizes), so only one batch of raw pixels is in memory.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a whole number >= 1, got {batch!r}")
    image_module = require("PIL.Image", "vpr")
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    out: list[np.ndarray] = []
    group: list[np.ndarray] = []

    def flush() -> None:
        if group:
            out.append(preprocessing(np.stack(group)))
            group.clear()

    bar = tqdm(paths, desc="reading images", unit="image",
               disable=True if len(paths) < _PROGRESS_MIN else None)
    for path in bar:
        pixels = _read(image_module, path)
        if group and (pixels.shape != group[0].shape or len(group) >= batch
                      or (len(group) + 1) * pixels.shape[0] * pixels.shape[1] > _BATCH_PIXELS):
            flush()
        group.append(pixels)
    flush()
    if not out:
        return np.zeros((0, preprocessing.features), dtype=np.float32)
    return np.concatenate(out)


def _read(image_module, path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8; RGB also covers palette, grey and 16-bit files."""
    try:
        with image_module.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    # UnidentifiedImageError is an OSError; truncated files raise OSError on decoding
    except (OSError, ValueError, image_module.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def load_reference(folder: str | Path, preprocessing: Preprocessing) -> np.ndarray:
    """Reference features ``(traverses, places, features)`` float32.

    One traverse when the images are directly in ``folder``; otherwise one per
    subfolder (name order), all with the same number of images.
    """
    folder = _folder(folder)
    subfolders = sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p)),
                        key=lambda p: _natural_key(p.name))
    has_images = any(_is_image(p) for p in folder.iterdir())
    if has_images and subfolders:
        raise DataError(f"{folder}: holds both images and subfolders; put the images of each "
                        f"traverse in its own subfolder, or remove the subfolders")
    if not subfolders:
        return load_images(list_images(folder), preprocessing)[None]
    traverses = [list_images(sub) for sub in subfolders]
    counts = [len(t) for t in traverses]
    if len(set(counts)) > 1:
        listing = ", ".join(f"{sub.name} {n}" for sub, n in zip(subfolders, counts))
        raise DataError(f"{folder}: reference traverses differ in image count ({listing}); "
                        f"each needs one image per place, in the same order")
    return np.stack([load_images(t, preprocessing) for t in traverses])


def load_query(folder: str | Path, preprocessing: Preprocessing) -> tuple[np.ndarray, list[str]]:
    """Query features ``(N, features)`` float32 and the file names, in natural order."""
    paths = list_images(folder)
    return load_images(paths, preprocessing), [p.name for p in paths]


def read_ground_truth(path: str | Path, query_names: list[str],
                      n_reference: int) -> list[list[int]]:
    """For each query (in ``query_names`` order), the sorted indices of its correct
    reference places; an empty list means the query has no true match."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:  # utf-8-sig: spreadsheet exports start with a byte-order mark
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    numbered = [(line, [c.strip() for c in cells])
                for line, cells in enumerate(rows, start=1) if any(c.strip() for c in cells)]
    if not numbered:
        raise DataError(f"{path}: empty file; expected a header row 'query,reference'")
    header = [h.lower() for h in numbered[0][1]]
    if "query" not in header or "reference" not in header:
        raise DataError(f"{path}: needs columns 'query' and 'reference' in its header row, "
                        f"got {','.join(numbered[0][1])[:80]!r}")
    qcol, rcol = header.index("query"), header.index("reference")
    index_of = {name: i for i, name in enumerate(query_names)}
    matches: list[set[int]] = [set() for _ in query_names]
    for line, cells in numbered[1:]:
        if max(qcol, rcol) >= len(cells):
            raise DataError(f"{path}: row {line} has {len(cells)} cells; "
                            f"the header has {len(header)}")
        q = _query_index(cells[qcol], index_of)
        if q is None:
            raise DataError(f"{path}: row {line}: unknown query {cells[qcol]!r}: neither an "
                            f"index nor the file name of a query image")
        if not 0 <= q < len(query_names):
            raise DataError(f"{path}: row {line}: query {q} out of range: there are "
                            f"{len(query_names)} queries (0..{len(query_names) - 1})")
        try:
            r = int(cells[rcol])
        except ValueError:
            raise DataError(f"{path}: row {line}: reference must be a place index, "
                            f"got {cells[rcol]!r}") from None
        if not 0 <= r < n_reference:
            raise DataError(f"{path}: row {line}: reference {r} out of range: there are "
                            f"{n_reference} reference places (0..{n_reference - 1})")
        matches[q].add(r)
    return [sorted(m) for m in matches]


def _query_index(cell: str, index_of: dict[str, int]) -> int | None:
    """A query by index or by file name (image names never parse as integers: they
    carry a suffix); None when it is neither."""
    try:
        return int(cell)
    except ValueError:
        return index_of.get(cell)
