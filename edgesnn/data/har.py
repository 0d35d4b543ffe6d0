"""Human-activity-recognition (HAR) windows: one in-memory form, several sources.

Every source — NPZ, long-layout CSV, the raw WISDM 2019 text files, a synthetic
generator — becomes a :class:`HarDataset` of fixed-length, time-major windows
``x (N, T, C)`` with integer labels, so training and evaluation code never sees
the file format. numpy only, like the rest of the package's runtime side.
Layouts and examples: docs/har-data.md.
"""

from __future__ import annotations

import csv
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from edgesnn.errors import DataError

__all__ = [
    "HarDataset", "load", "load_npz", "save_npz", "load_csv", "load_wisdm", "synthetic",
    "WISDM_ACTIVITIES", "L2MU_ACTIVITIES", "WISDM_CHANNELS", "SYNTHETIC_CHANNELS",
    "SYNTHETIC_CLASSES",
]

# WISDM 2019 activity codes (there is no 'N').
WISDM_ACTIVITIES: dict[str, str] = {
    "A": "walking", "B": "jogging", "C": "stairs", "D": "sitting", "E": "standing",
    "F": "typing", "G": "brushing teeth", "H": "eating soup", "I": "eating chips",
    "J": "eating pasta", "K": "drinking", "L": "eating sandwich", "M": "kicking",
    "O": "playing catch", "P": "dribbling", "Q": "writing", "R": "clapping",
    "S": "folding clothes",
}
# The seven hand-oriented activities of the L2MU paper.
L2MU_ACTIVITIES: tuple[str, ...] = (
    "dribbling", "playing catch", "typing", "writing", "clapping", "brushing teeth",
    "folding clothes",
)
# The L2MU paper interleaves the two sensors axis by axis.
WISDM_CHANNELS: tuple[str, ...] = ("acc_x", "gyro_x", "acc_y", "gyro_y", "acc_z", "gyro_z")
SYNTHETIC_CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
SYNTHETIC_CLASSES: tuple[str, ...] = ("standing", "walking", "running", "waving", "typing")

_SENSOR_DIRS = {"acc": "accel", "gyro": "gyro"}  # channel prefix -> WISDM file/folder word
_MAX_GAP_S = 1.0  # a longer pause in a recording is a break, not something to interpolate


@dataclass(eq=False)
class HarDataset:
    """Labelled sensor windows, checked on construction so bad data fails at load time.

    ``partial=True`` marks a part of a larger dataset (what :meth:`subset` and
    :meth:`split` return): such a part may lack some classes. A dataset built
    directly or by a loader must have at least one window of every class, because
    a class without windows usually means a wrong class list or a broken file.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    channels: list[str]
    subjects: np.ndarray | None = None
    rate_hz: float | None = None
    partial: bool = field(default=False, kw_only=True, repr=False)

    def __post_init__(self) -> None:
        self.x = _as_windows(self.x)
        self.y = _as_labels(self.y, "y")
        self.classes = [str(c) for c in self.classes]
        self.channels = [str(c) for c in self.channels]
        if self.subjects is not None:
            self.subjects = _as_labels(self.subjects, "subjects")
        if self.rate_hz is not None:
            try:
                self.rate_hz = float(self.rate_hz)
            except (TypeError, ValueError):
                raise DataError(f"rate_hz must be a number, got {self.rate_hz!r}") from None
        self._check()

    def _check(self) -> None:
        n, _, c = self.x.shape
        bad = ~np.isfinite(self.x).all(axis=(1, 2))
        if bad.any():
            raise DataError(f"window {int(np.argmax(bad))} contains NaN or Inf "
                            f"({int(bad.sum())} such window(s))")
        if len(self.y) != n:
            raise DataError(f"y has {len(self.y)} labels for {n} windows")
        if self.subjects is not None and len(self.subjects) != n:
            raise DataError(f"subjects has {len(self.subjects)} entries for {n} windows")
        if len(self.channels) != c:
            raise DataError(f"{len(self.channels)} channel names for {c} channels")
        if len(set(self.classes)) != len(self.classes):
            dup = next(name for name in self.classes if self.classes.count(name) > 1)
            raise DataError(f"duplicate class name {dup!r}")
        outside = (self.y < 0) | (self.y >= len(self.classes))
        if outside.any():
            i = int(np.argmax(outside))
            raise DataError(f"unknown label {int(self.y[i])} in window {i}: labels must be "
                            f"0..{len(self.classes) - 1} for {len(self.classes)} class name(s)")
        if self.rate_hz is not None and not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise DataError(f"rate_hz must be a positive number, got {self.rate_hz}")
        if not self.partial:
            counts = np.bincount(self.y, minlength=len(self.classes))
            if (counts == 0).any():
                k = int(np.argmax(counts == 0))
                raise DataError(f"empty class {self.classes[k]!r}: no window has label {k}")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray | Sequence[int] | slice) -> HarDataset:
        """A part (for splits, folds, filtering) that keeps the full label space.

        Class and channel lists are kept so label ``k`` means the same class in every
        part; a part may therefore lack some classes. ``index``: integer indices, a
        boolean mask or a slice. The arrays are copies.
        """
        rows = np.atleast_1d(np.arange(len(self))[index])
        if len(rows) == 0:
            raise DataError("subset is empty: no window selected")
        subjects = None if self.subjects is None else self.subjects[rows]
        return HarDataset(self.x[rows], self.y[rows], list(self.classes), list(self.channels),
                          subjects, self.rate_hz, partial=True)

    def split(self, val: float = 0.2, test: float = 0.2, by: str = "auto",
              seed: int = 0) -> tuple[HarDataset, HarDataset | None, HarDataset | None]:
        """Train/validation/test parts, subject-wise when possible, so test scores mean
        "new person" rather than "new window of a person already seen".

        ``by="subject"``: every subject's windows go to one part; subjects are drawn
        with a seeded generator so the part sizes (in windows) come as close as
        possible to the fractions. ``by="random"``: stratified per class (every class
        keeps at least one training window). ``by="auto"``: subject when ``subjects``
        is known, else random. A fraction of 0 gives ``None`` for that part.
        Same arguments, same split.
        """
        _check_fractions(val, test)
        if by == "auto":
            by = "random" if self.subjects is None else "subject"
        if by == "subject":
            parts = self._subject_parts(val, test, seed)
        elif by == "random":
            parts = self._random_parts(val, test, seed)
        else:
            raise DataError(f"unknown split {by!r}; expected 'auto', 'subject' or 'random'")
        names = ("train", "validation", "test")
        for name, frac, rows in zip(names, (1.0, val, test), parts):
            if frac > 0 and len(rows) == 0:
                raise DataError(f"too few windows ({len(self)}) for a {frac:g} {name} split")
        train, val_rows, test_rows = parts
        return (self.subset(train),
                self.subset(val_rows) if val > 0 else None,
                self.subset(test_rows) if test > 0 else None)

    def _subject_parts(self, val: float, test: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.subjects is None:
            raise DataError("cannot split by subject: the dataset has no subject ids; "
                            "use by='random'")
        ids, counts = np.unique(self.subjects, return_counts=True)
        needed = 1 + (val > 0) + (test > 0)
        if len(ids) < needed:
            raise DataError(f"a subject-wise split into {needed} parts needs at least {needed} "
                            f"subjects; the dataset has {len(ids)}")
        order, cut_test, cut_val = _best_subject_cuts(counts, val, test, seed)
        groups = np.split(ids[order], [cut_test, cut_val])  # test, validation, train
        rows = [np.flatnonzero(np.isin(self.subjects, g)) for g in groups]
        return rows[2], rows[1], rows[0]

    def _random_parts(self, val: float, test: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        parts: tuple[list, list, list] = ([], [], [])
        for k in range(len(self.classes)):
            rows = rng.permutation(np.flatnonzero(self.y == k))
            n = len(rows)
            if n == 0:
                continue
            n_test = min(_round(test * n), n - 1)
            n_val = min(_round(val * n), n - 1 - n_test)
            for part, chunk in zip(parts, np.split(rows, [n - n_val - n_test, n - n_test])):
                part.append(chunk)
        train, val_rows, test_rows = (np.sort(np.concatenate(p)) for p in parts)
        return train, val_rows, test_rows

    def summary(self) -> str:
        """A few lines to check a dataset at a glance before spending time training on it."""
        n, t, c = self.x.shape
        rate = "unknown rate" if self.rate_hz is None else (
            f"{self.rate_hz:g} Hz, {t / self.rate_hz:g} s windows")
        counts = np.bincount(self.y, minlength=len(self.classes))
        subjects = ("unknown" if self.subjects is None
                    else str(len(np.unique(self.subjects))))
        return "\n".join([
            f"{n} windows x {t} steps x {c} channels ({rate})",
            f"channels: {', '.join(self.channels)}",
            f"classes ({len(self.classes)}): "
            + ", ".join(f"{name} {int(k)}" for name, k in zip(self.classes, counts)),
            f"subjects: {subjects}",
        ])


def _as_windows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"x must hold numbers, got dtype {x.dtype}")
    if x.ndim != 3:
        raise DataError(f"x must be shaped (windows, steps, channels), got shape {x.shape}")
    if 0 in x.shape:
        raise DataError(f"x has no data: shape {x.shape}")
    return x.astype(np.float32, copy=False)


def _as_labels(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64, copy=False)
    if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and (a == np.round(a)).all():
        return a.astype(np.int64)  # integers that went through a float column
    raise DataError(f"{name} must hold integers, got dtype {a.dtype}")


def _round(v: float) -> int:
    return int(np.floor(v + 0.5))  # half up: Python's round() sends 2.5 to 2


def _check_fractions(val: float, test: float) -> None:
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"split fractions must be >= 0 and leave windows for training; "
                        f"got val={val}, test={test}")


def _best_subject_cuts(counts: np.ndarray, val: float, test: float, seed: int,
                       tries: int = 256) -> tuple[np.ndarray, int, int]:
    """Among seeded random subject orders, the one whose cuts (test | validation |
    train) give part sizes nearest to the fractions. Random orders rather than a
    size-sorted greedy fill, so the seed really changes which subjects are held out.
    """
    rng = np.random.default_rng(seed)
    n, total = len(counts), int(counts.sum())
    targets = np.array([test, val, 1 - val - test]) * total
    best: tuple[float, np.ndarray, int, int] | None = None
    for _ in range(tries):
        order = rng.permutation(n)
        cum = np.concatenate([[0], np.cumsum(counts[order])])
        # at least one subject in each requested part, and one for training
        i = _nearest(cum, targets[0], 1, n - 1 - (val > 0)) if test > 0 else 0
        j = _nearest(cum, targets[0] + targets[1], i + 1, n - 1) if val > 0 else i
        sizes = np.array([cum[i], cum[j] - cum[i], total - cum[j]])
        err = float(np.abs(sizes - targets).sum())
        if best is None or err < best[0]:
            best = (err, order, i, j)
    return best[1], best[2], best[3]


def _nearest(cum: np.ndarray, target: float, lo: int, hi: int) -> int:
    return lo + int(np.argmin(np.abs(cum[lo:hi + 1] - target)))


# ---------------------------------------------------------------- NPZ


def load_npz(path: str | Path) -> HarDataset:
    """Read the project's HAR archive (docs/har-data.md); no pickles, so a file from
    elsewhere cannot run code on load."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file or directory")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single .npy array, not an .npz archive")
        with data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: has no array {key!r} (found: "
                            f"{', '.join(arrays) or 'none'})")
    with _prefixed(path):
        x, y = _as_windows(arrays["x"]), _as_labels(arrays["y"], "y")
        n_classes = int(y.max()) + 1 if len(y) and y.max() >= 0 else 1
        classes = _names(arrays.get("classes"), "classes", "class", n_classes)
        channels = _names(arrays.get("channels"), "channels", "ch", x.shape[2])
        rate = arrays.get("rate_hz")
        if rate is not None and rate.size != 1:
            raise DataError(f"rate_hz must be one number, got shape {rate.shape}")
        return HarDataset(x, y, classes, channels, arrays.get("subjects"),
                          None if rate is None else rate.item())


def _names(a: np.ndarray | None, key: str, prefix: str, default_count: int) -> list[str]:
    if a is None:
        return [f"{prefix}{i}" for i in range(default_count)]
    if a.ndim != 1:
        raise DataError(f"{key} must be a 1-D array of names, got shape {a.shape}")
    return [str(v) for v in a.tolist()]


@contextmanager
def _prefixed(path: Path) -> Iterator[None]:
    """Put the file name in front of a DataError raised while building a dataset."""
    try:
        yield
    except DataError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise DataError(f"{path}: {exc}") from None


def save_npz(ds: HarDataset, path: str | Path) -> None:
    """Write a dataset so a slow source (parsing all of WISDM takes about half a minute)
    is converted once; NPZ then loads in a fraction of a second."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise DataError(f"{path}: cannot write, directory {path.parent} does not exist")
    arrays = {"x": ds.x, "y": ds.y, "classes": np.array(ds.classes, dtype=str),
              "channels": np.array(ds.channels, dtype=str)}
    if ds.subjects is not None:
        arrays["subjects"] = ds.subjects
    if ds.rate_hz is not None:
        arrays["rate_hz"] = np.array(ds.rate_hz, dtype=np.float64)
    try:
        with open(path, "wb") as f:  # a file object: numpy would append .npz to a name
            np.savez(f, **arrays)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None


# ---------------------------------------------------------------- CSV


def load_csv(path: str | Path) -> HarDataset:
    """Read windows from a spreadsheet-friendly long table: one row per time step,
    columns ``window,label,<channels...>`` plus an optional ``subject``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file or directory")
    try:  # utf-8-sig: spreadsheet exports start with a byte-order mark
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    reader = csv.reader(text.splitlines())
    rows, line_numbers = [], []
    for cells in reader:
        if any(c.strip() for c in cells):
            rows.append([c.strip() for c in cells])
            line_numbers.append(reader.line_num)
    if not rows:
        raise DataError(f"{path}: empty file")
    header = rows[0]
    columns = _csv_columns(path, header)
    for cells, line in zip(rows[1:], line_numbers[1:]):
        if len(cells) != len(header):
            raise DataError(f"{path}: row {line} has {len(cells)} cells; the header has {len(header)}")
    body, lines = rows[1:], line_numbers[1:]
    if not body:
        raise DataError(f"{path}: no data rows after the header")
    with _prefixed(path):
        return _csv_dataset(header, columns, body, lines)


def _csv_columns(path: Path, header: list[str]) -> dict[str, int]:
    """Column index of window, label and subject (matched in any letter case)."""
    lower = [h.lower() for h in header]
    if "window" not in lower or "label" not in lower:
        raise DataError(f"{path}: cannot read this layout; expected a header row "
                        f"'window,label,<channel columns...>' (optional 'subject'), "
                        f"got {','.join(header)[:80]!r}")
    if len(set(lower)) != len(lower):
        dup = next(h for h in header if lower.count(h.lower()) > 1)
        raise DataError(f"{path}: column {dup!r} appears twice in the header")
    columns = {name: lower.index(name) for name in ("window", "label", "subject")
               if name in lower}
    if len(header) == len(columns):
        raise DataError(f"{path}: no channel columns besides {', '.join(columns)}")
    return columns


def _csv_dataset(header: list[str], columns: dict[str, int], body: list[list[str]],
                 lines: list[int]) -> HarDataset:
    cols = list(zip(*body))
    channel_cols = [i for i in range(len(header)) if i not in columns.values()]

    def where(i: int) -> str:
        return f"row {lines[i]}"

    values = np.stack([_numbers(cols[i], float, where, header[i]) for i in channel_cols], axis=1)
    ids = np.array(cols[columns["window"]])
    starts = _window_starts(ids, lines)
    lengths = np.diff(np.append(starts, len(ids)))
    if (lengths != lengths[0]).any():
        k = int(np.argmax(lengths != lengths[0]))
        raise DataError(f"ragged windows: window {str(ids[0])!r} has {lengths[0]} rows, "
                        f"window {str(ids[starts[k]])!r} (row {lines[starts[k]]}) has {lengths[k]}")
    labels = _per_window(np.array(cols[columns["label"]]), starts, lines, "label")
    classes = sorted(set(labels.tolist()))
    y = np.searchsorted(np.array(classes), labels)
    subjects = None
    if "subject" in columns:
        subject_ids = _numbers(cols[columns["subject"]], int, where, "subject")
        subjects = _per_window(subject_ids, starts, lines, "subject")
    x = values.reshape(len(starts), lengths[0], len(channel_cols))
    return HarDataset(x, y, classes, [header[i] for i in channel_cols], subjects)


def _numbers(cells: Sequence[str], kind: type, where: Callable[[int], str],
             what: str) -> np.ndarray:
    """Parse a text column. Python's int/float are several times faster than numpy's
    string casts; on a failure, find the cell so the message can name its row
    (``where(i)`` says where cell ``i`` came from)."""
    dtype = np.int64 if kind is int else np.float64
    try:
        return np.array(list(map(kind, cells)), dtype=dtype)
    except (ValueError, OverflowError):
        pass
    for i, cell in enumerate(cells):
        try:
            np.array(kind(cell), dtype=dtype)
        except (ValueError, OverflowError):
            word = "an integer" if kind is int else "a number"
            raise DataError(f"{where(i)}: {what} {cell!r} is not {word}") from None
    raise AssertionError("unreachable: the column failed to parse but no cell did")


def _window_starts(ids: np.ndarray, lines: list[int]) -> np.ndarray:
    starts = np.flatnonzero(np.append(True, ids[1:] != ids[:-1]))
    seen: set[str] = set()
    for s in starts:
        if ids[s] in seen:
            raise DataError(f"row {lines[s]}: window {str(ids[s])!r} appears again; the rows of "
                            "a window must be consecutive")
        seen.add(ids[s])
    return starts


def _per_window(column: np.ndarray, starts: np.ndarray, lines: list[int], what: str) -> np.ndarray:
    """The one value a window has in ``column``; a window with two is a broken file."""
    is_start = np.zeros(len(column), dtype=bool)
    is_start[starts] = True
    window_of_row = np.cumsum(is_start) - 1
    first = column[starts]
    differs = column != first[window_of_row]
    if differs.any():
        r = int(np.argmax(differs))
        raise DataError(f"row {lines[r]}: {what} {column[r].item()!r} differs from the rest of "
                        f"its window ({first[window_of_row[r]].item()!r})")
    return first


# ---------------------------------------------------------------- WISDM


def load_wisdm(root: str | Path, device: str = "watch", rate_hz: float = 20.0,
               window_s: float = 2.0, hop_s: float | None = None,
               channels: Sequence[str] = WISDM_CHANNELS,
               activities: Sequence[str] | None = None) -> HarDataset:
    """Cut the raw WISDM 2019 recordings into windows on one uniform time grid.

    The two sensors of a watch are sampled separately with jittered clocks, so each
    (subject, activity) recording is resampled by linear interpolation onto a common
    ``rate_hz`` grid over the span both sensors cover; pauses longer than 1 s split a
    recording instead of being interpolated across. Windows are
    ``round(window_s * rate_hz)`` steps, ``hop_s`` apart (default: not overlapping).
    A subject with an accelerometer file but no gyroscope file (or the reverse) is an
    error, as that means an incomplete download; a sensor no requested channel uses is
    not read at all. Classes follow the order of ``activities`` (default: WISDM code
    order), keeping those with windows.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory")
    steps, hop = _window_steps(rate_hz, window_s, hop_s)
    channels = _check_channels(channels)
    codes = _activity_codes(activities)
    sensors = sorted({c.split("_")[0] for c in channels})
    files = _wisdm_files(root, device, sensors)
    recordings = {s: _read_sensor(files[s]) for s in sensors}
    keys = [k for k in set.intersection(*(set(recordings[s]) for s in sensors)) if k[1] in codes]
    names = [f"{s}_{axis}" for s in sensors for axis in "xyz"]
    xs, ys, subj = [], [], []
    for subject, code in sorted(keys, key=lambda k: (k[0], codes.index(k[1]))):
        windows = _recording_windows([recordings[s][(subject, code)] for s in sensors],
                                     rate_hz, steps, hop)
        if len(windows):
            xs.append(windows[:, :, [names.index(c) for c in channels]])
            ys += [code] * len(windows)
            subj += [subject] * len(windows)
    if not xs:
        raise DataError(f"{root}: no {window_s:g} s window fits in any recording "
                        "of the selected activities")
    kept = [c for c in codes if c in set(ys)]
    y = np.array([kept.index(c) for c in ys], dtype=np.int64)
    return HarDataset(np.concatenate(xs), y, [WISDM_ACTIVITIES[c] for c in kept],
                      list(channels), np.array(subj, dtype=np.int64), rate_hz)


def _window_steps(rate_hz: float, window_s: float, hop_s: float | None) -> tuple[int, int]:
    if not rate_hz > 0:
        raise DataError(f"rate_hz must be positive, got {rate_hz}")
    steps = _round(window_s * rate_hz)
    hop = steps if hop_s is None else _round(hop_s * rate_hz)
    if steps < 1 or hop < 1:
        raise DataError(f"window_s={window_s} and hop_s={hop_s} are shorter than one sample "
                        f"at {rate_hz:g} Hz")
    return steps, hop


def _check_channels(channels: Sequence[str]) -> list[str]:
    channels = list(channels)
    known = [f"{s}_{a}" for s in _SENSOR_DIRS for a in "xyz"]
    unknown = [c for c in channels if c not in known]
    if not channels or unknown or len(set(channels)) != len(channels):
        raise DataError(f"channels must be distinct names from {', '.join(known)}; "
                        f"got {', '.join(channels) or 'none'}")
    return channels


def _activity_codes(activities: Sequence[str] | None) -> list[str]:
    if activities is None:
        return list(WISDM_ACTIVITIES)
    by_name = {name: code for code, name in WISDM_ACTIVITIES.items()}
    unknown = [a for a in activities if a not in by_name]
    if unknown:
        raise DataError(f"unknown WISDM activit{'y' if len(unknown) == 1 else 'ies'} "
                        f"{', '.join(map(repr, unknown))}; known: {', '.join(by_name)}")
    return list(dict.fromkeys(by_name[a] for a in activities))


def _wisdm_files(root: Path, device: str, sensors: list[str]) -> dict[str, dict[int, list[Path]]]:
    if device not in ("watch", "phone"):
        raise DataError(f"unknown WISDM device {device!r}; expected 'watch' or 'phone'")
    found: dict[str, dict[int, list[Path]]] = {}
    for sensor in sensors:
        word = _SENSOR_DIRS[sensor]
        pattern = re.compile(rf"data_(\d+)_{word}_{device}\.txt")
        found[sensor] = {}
        for p in sorted(root.glob(f"**/data_*_{word}_{device}.txt")):
            match = pattern.fullmatch(p.name)
            if match and p.is_file():
                found[sensor].setdefault(int(match.group(1)), []).append(p)
        if not found[sensor]:
            raise DataError(f"{root}: no WISDM files data_*_{word}_{device}.txt found")
    for sensor in sensors:
        for other in sensors:
            missing = sorted(set(found[sensor]) - set(found[other]))
            if missing:
                word, other_word = _SENSOR_DIRS[sensor], _SENSOR_DIRS[other]
                raise DataError(f"{root}: subject {missing[0]} has data_{missing[0]}_{word}_"
                                f"{device}.txt but no data_{missing[0]}_{other_word}_{device}.txt")
    return found


def _read_sensor(files: dict[int, list[Path]]) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """(subject, code) -> (timestamps in ns, samples (n, 3)), over all of a sensor's files."""
    parts: dict[tuple[int, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    letters = np.array(sorted(WISDM_ACTIVITIES))
    for paths in files.values():
        for path in paths:
            subjects, codes, stamps, xyz = _read_wisdm_file(path)
            keys, group = np.unique(subjects * len(letters) + np.searchsorted(letters, codes),
                                    return_inverse=True)
            for k, key in enumerate(keys.tolist()):
                rows = group == k
                subject, code = divmod(key, len(letters))
                parts.setdefault((subject, str(letters[code])), []).append((stamps[rows], xyz[rows]))
    return {key: (np.concatenate([p[0] for p in chunks]), np.concatenate([p[1] for p in chunks]))
            for key, chunks in parts.items()}


def _read_wisdm_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    lines = text.replace(";", "").splitlines()  # ';' only ends a record
    fields = [line.split(",") for line in lines]  # one pass in C-speed calls: files are large
    kept = [i for i, cells in enumerate(fields) if len(cells) == 6]
    if len(kept) != len(fields):
        for i, cells in enumerate(fields):
            if len(cells) != 6 and lines[i].strip():
                raise DataError(f"{path}: line {i + 1}: expected 'subject,activity,timestamp,"
                                f"x,y,z;', got {lines[i][:60]!r}")
        fields = [fields[i] for i in kept]

    def where(i: int) -> str:
        return f"{path}: line {kept[i] + 1}"

    if not fields:
        raise DataError(f"{path}: no data lines")
    cols = list(zip(*fields))
    subjects = _numbers(cols[0], int, where, "subject")
    stamps = _numbers(cols[2], int, where, "timestamp")
    xyz = np.stack([_numbers(cols[k], float, where, "sample") for k in (3, 4, 5)], axis=1)
    codes = np.char.strip(np.array(cols[1]))
    unknown = ~np.isin(codes, list(WISDM_ACTIVITIES))
    if unknown.any():
        i = int(np.argmax(unknown))
        raise DataError(f"{where(i)}: unknown activity code {str(codes[i])!r}")
    return subjects, codes, stamps, xyz


def _recording_windows(sensors: list[tuple[np.ndarray, np.ndarray]], rate_hz: float,
                       steps: int, hop: int) -> np.ndarray:
    """Windows (n, steps, 3 * len(sensors)) of one (subject, activity) recording."""
    t0 = min(int(stamps.min()) for stamps, _ in sensors)
    clean = [_sorted_unique(stamps, xyz, t0) for stamps, xyz in sensors]
    spans = _segments(clean[0][0])
    for t, _ in clean[1:]:
        spans = _intersect(spans, _segments(t))
    windows = []
    for start, end in spans:
        n = int(np.floor((end - start) * rate_hz + 1e-6)) + 1
        if n < steps:
            continue
        grid = np.minimum(start + np.arange(n) / rate_hz, end)  # never past the data
        series = np.concatenate([np.stack([np.interp(grid, t, v[:, k]) for k in range(3)], axis=1)
                                 for t, v in clean], axis=1)
        windows += [series[s:s + steps] for s in range(0, n - steps + 1, hop)]
    return np.array(windows).reshape(-1, steps, 3 * len(sensors))


def _sorted_unique(stamps: np.ndarray, xyz: np.ndarray, t0: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(stamps, kind="stable")
    stamps, xyz = stamps[order], xyz[order]
    keep = np.append(True, np.diff(stamps) > 0)  # first sample of a repeated timestamp
    return (stamps[keep] - t0) * 1e-9, xyz[keep]  # seconds; int subtraction keeps precision


def _segments(t: np.ndarray) -> list[tuple[float, float]]:
    breaks = np.flatnonzero(np.diff(t) > _MAX_GAP_S)
    starts = np.append(0, breaks + 1)
    ends = np.append(breaks, len(t) - 1)
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, ends)]


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


# ---------------------------------------------------------------- synthetic

# Per activity: range of the rhythm (Hz, drawn per window), accelerometer and
# gyroscope amplitudes per watch axis (m/s^2, rad/s), and the weight of the 2nd
# harmonic (a heel strike is not a pure sine). Standing "moves" by postural sway;
# key presses have no steady rhythm, hence typing's wide range.
_SIGNATURES: dict[str, tuple[tuple[float, float], tuple[float, ...], tuple[float, ...], float]] = {
    "standing": ((0.2, 0.4), (0.04, 0.04, 0.04), (0.02, 0.02, 0.02), 0.0),
    "walking": ((1.8, 1.8), (1.5, 1.0, 2.5), (0.6, 0.9, 0.4), 0.4),
    "running": ((2.8, 2.8), (4.0, 2.5, 7.0), (1.5, 2.5, 1.0), 0.4),
    "waving": ((1.2, 1.2), (0.8, 3.0, 0.6), (0.3, 0.3, 3.5), 0.0),
    "typing": ((6.0, 8.0), (0.25, 0.25, 0.35), (0.15, 0.10, 0.10), 0.0),
}
_GRAVITY = np.array([0.0, 0.0, 9.81])


def synthetic(n_subjects: int = 8, windows_per_class: int = 24, steps: int = 40,
              rate_hz: float = 20.0, classes: Sequence[str] = SYNTHETIC_CLASSES,
              seed: int = 0) -> HarDataset:
    """Watch-like activity windows for tests and demos without downloading anything.

    Each activity has its own rhythm and amplitude; each subject wears the watch at
    its own angle and moves ±15 % faster/slower and stronger/weaker, and every window
    gets a random phase and noise, so a subject-wise split is harder than a random
    one yet simple features still separate the classes. Same seed, same data.
    Every subject gets ``max(1, windows_per_class // n_subjects)`` windows per class.
    Rhythms up to 8 Hz (typing) need ``rate_hz`` >= 16 to avoid aliasing.
    """
    classes = list(classes)
    unknown = [c for c in classes if c not in _SIGNATURES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise DataError(f"synthetic classes must be distinct names from "
                        f"{', '.join(_SIGNATURES)}; got {', '.join(classes) or 'none'}")
    if n_subjects < 1 or windows_per_class < 1 or steps < 2 or not rate_hz > 0:
        raise DataError("synthetic needs n_subjects >= 1, windows_per_class >= 1, steps >= 2 "
                        "and rate_hz > 0")
    rng = np.random.default_rng(seed)
    per_subject = max(1, windows_per_class // n_subjects)
    t = np.arange(steps) / rate_hz
    xs, ys, subjects = [], [], []
    for subject in range(1, n_subjects + 1):
        wrist = _random_rotation(rng, max_angle=np.deg2rad(35))
        for k, name in enumerate(classes):
            f_scale, a_scale = rng.uniform(0.85, 1.15, size=2)
            for _ in range(per_subject):
                acc, gyro = _activity_window(name, t, f_scale, a_scale, rng)
                xs.append(np.concatenate([acc @ wrist.T, gyro @ wrist.T], axis=1))
                ys.append(k)
                subjects.append(subject)
    return HarDataset(np.array(xs, dtype=np.float32), np.array(ys), classes,
                      list(SYNTHETIC_CHANNELS), np.array(subjects), rate_hz)


def _activity_window(name: str, t: np.ndarray, f_scale: float, a_scale: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Accelerometer (with gravity) and gyroscope (T, 3) in the watch's own frame."""
    (f_lo, f_hi), acc_amp, gyro_amp, harmonic = _SIGNATURES[name]
    f = rng.uniform(f_lo, f_hi) * f_scale * rng.uniform(0.97, 1.03)
    amp = a_scale * rng.uniform(0.9, 1.1)
    phase = rng.uniform(0, 2 * np.pi, size=(2, 3))
    wave = (np.sin(2 * np.pi * f * t[:, None, None] + phase)
            + harmonic * np.sin(4 * np.pi * f * t[:, None, None] + 2 * phase))  # (T, 2, 3)
    acc = _GRAVITY + amp * np.array(acc_amp) * wave[:, 0] + rng.normal(0, 0.1, (len(t), 3))
    gyro = amp * np.array(gyro_amp) * wave[:, 1] + rng.normal(0, 0.03, (len(t), 3))
    return acc, gyro


def _random_rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)  # Rodrigues


# ---------------------------------------------------------------- dispatch


def load(source: str | Path, **kwargs) -> HarDataset:
    """One entry point for scripts and the command line: the source's form picks the reader.

    ``"synthetic"`` (options go to :func:`synthetic`), a ``.npz`` or ``.csv`` file, or
    a directory holding raw WISDM files (options go to :func:`load_wisdm`).
    """
    if str(source) == "synthetic":
        return synthetic(**kwargs)
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if path.is_file() and suffix in (".npz", ".csv"):
        if kwargs:
            raise DataError(f"{path}: options {', '.join(kwargs)} do not apply to {suffix} files")
        return load_npz(path) if suffix == ".npz" else load_csv(path)
    if path.is_dir() and _has_wisdm_files(path, kwargs.get("device", "watch")):
        return load_wisdm(path, **kwargs)
    raise DataError(f"cannot read {path}: expected 'synthetic', a .npz or .csv file, or a "
                    "directory of raw WISDM files (data_<subject>_accel_watch.txt, ...)")


def _has_wisdm_files(root: Path, device: str) -> bool:
    return any(next(root.glob(f"**/data_*_{word}_{device}.txt"), None) is not None
               for word in _SENSOR_DIRS.values())
