"""Reading and writing input/output sequences: NPZ (key ``x``/``y``) or CSV.

Shapes: a sequence is (T, features); several are (N, T, features). A CSV holds one
sequence, one row per step, comma-separated, with an optional header row.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgesnn.errors import InputError


def load_sequences(path: str | Path, key: str = "x") -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError(f"{path}: a single .npy array, not an .npz archive")
            with data:
                if key not in data.files:
                    raise InputError(f"{path}: has no array {key!r} (found: "
                                     f"{', '.join(data.files) or 'none'})")
                x = data[key]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    elif suffix == ".csv":
        x = _read_csv(path)
    else:
        raise InputError(f"{path}: unsupported input format {suffix!r}; use .npz or .csv")
    if x.ndim not in (2, 3) or not np.issubdtype(x.dtype, np.number):
        raise InputError(f"{path}: {key!r} has shape {x.shape} and dtype {x.dtype}; expected "
                         "numbers shaped (T, features) or (N, T, features)")
    return x.astype(np.float32)


def _read_csv(path: Path) -> np.ndarray:
    try:  # utf-8-sig: spreadsheet exports start with a byte-order mark
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and not _numeric_row(lines[0]):
        lines = lines[1:]  # header
    rows = []
    for number, line in enumerate(lines, start=1):
        cells = [c.strip() for c in line.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise InputError(f"{path}: row {number} is not numeric: {line[:60]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise InputError(f"{path}: row {number} has {len(rows[-1])} columns; "
                             f"the first has {len(rows[0])}")
    if not rows:
        raise InputError(f"{path}: no data rows")
    return np.asarray(rows, dtype=np.float32)


def _numeric_row(line: str) -> bool:
    try:
        [float(c) for c in line.split(",")]
        return True
    except ValueError:
        return False


def check_writable(path: str | Path) -> Path:
    """Fail before long work, not after it, when an output cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"{path}: cannot write, directory {path.parent} does not exist")
    return path


def save_sequences(path: str | Path, y: np.ndarray) -> None:
    path = check_writable(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise InputError(f"{path}: unsupported output format {suffix!r}; use .npz or .csv")
    if suffix == ".csv" and y.ndim != 2:
        raise InputError(f"{path}: CSV holds one sequence; this output has shape {y.shape} "
                         "— write .npz instead")
    try:
        if suffix == ".npz":
            np.savez(path, y=y)
        else:
            header = ",".join(f"y{i}" for i in range(y.shape[1]))
            np.savetxt(path, y, delimiter=",", header=header, comments="", fmt="%.9g")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
