"""Real blimp flight logs (CSV): the recorded error sequences that PD targets are built from.

One log is a ~70 s segment at a nominal 10 Hz around one set-point step, with the
columns ``time, meas, ref, error`` and the commands of whichever controller flew
(``pid_p, pid_i, pid_d, pid_pd, u`` for the conventional one, ``snn_pd`` for an
evolved SNN). Layout and quirks of the published logs: docs/controllers.md.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesnn.errors import DataError

__all__ = ["FlightLog", "load_log", "load_logs", "flight_id"]

REQUIRED = ("time", "meas", "ref", "error")


@dataclass(frozen=True)
class FlightLog:
    """One segment: ``columns`` maps every CSV column to a float64 array."""

    name: str
    columns: dict[str, np.ndarray]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.columns[key]

    def __len__(self) -> int:
        return len(self.columns["time"])

    @property
    def flown_command(self) -> np.ndarray:
        """The command that reached the motors: the SNN output if an SNN flew, else ``u``."""
        snn = self.columns.get("snn_pd")
        if snn is not None and np.any(snn != 0):
            return snn
        if "u" not in self.columns:
            raise DataError(f"{self.name}: no command column (u or snn_pd)")
        return self.columns["u"]

    @property
    def controller(self) -> str:
        snn = self.columns.get("snn_pd")
        return "snn" if snn is not None and np.any(snn != 0) else "pid"


def flight_id(log: FlightLog) -> str:
    """The flight a segment was cut from (segments of one flight overlap, so held-out
    splits must separate flights, not files): the ``YYYY-MM-DD-hh-mm-ss`` stamp in the
    file name, or the whole name when it has none."""
    parts = log.name.split("_")
    stamps = [p for p in parts if p.count("-") == 5]
    return stamps[0] if stamps else log.name


def load_log(path: str | Path) -> FlightLog:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(rows) < 3:
        raise DataError(f"{path}: needs a header and at least two rows")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(header)})")
    data = np.empty((len(rows) - 1, len(header)))
    for n, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise DataError(f"{path}: row {n + 2} has {len(row)} fields, the header {len(header)}")
        try:
            data[n] = [float(v) for v in row]
        except ValueError:
            raise DataError(f"{path}: row {n + 2} has a non-numeric value") from None
    if not np.all(np.isfinite(data)):
        raise DataError(f"{path}: NaN or Inf values")
    columns = {h: data[:, k] for k, h in enumerate(header)}
    if np.any(np.diff(columns["time"]) < 0):
        raise DataError(f"{path}: time goes backwards")
    return FlightLog(path.stem, columns)


def load_logs(folder: str | Path, pattern: str = "*.csv") -> list[FlightLog]:
    """Every log in ``folder`` in name order (a deterministic order for seeded splits)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such directory")
    files = sorted(folder.glob(pattern))
    if not files:
        raise DataError(f"{folder}: no {pattern} flight logs")
    return [load_log(f) for f in files]

