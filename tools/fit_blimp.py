"""Fit the physical blimp model to flight logs and compare it with the identified TF model.

    python tools/fit_blimp.py --logs DIR [--window 5] [--plot out.png]

Prints the fitted parameters (paste them into FITTED in controllers/plants.py) and,
per log, the multiple-shooting altitude RMSE of the fitted physical model and of
the identified 10 Hz TF model on the same ~5 s windows (see controllers/blimp_fit.py).
With --plot, draws the logged altitude of three logs with every window's
simulation by both models.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from edgesnn.controllers.blimp_fit import (FitReport, fit_blimp, make_windows, predict_physical,
                                           predict_tf)
from edgesnn.controllers.flight_logs import FlightLog, load_logs
from edgesnn.errors import require


def plot_windows(report: FitReport, logs: list[FlightLog], path: str, count: int = 3) -> None:
    """Logged altitude (dots) and each window's open-loop prediction, for ``count``
    logs spread over the set; the flown command on a second axis."""
    require("matplotlib", "plot").use("Agg")
    plt = require("matplotlib.pyplot", "plot")
    win = make_windows(logs, report.window_s)
    physical, tf = predict_physical(report.params, win), predict_tf(win)
    chosen = np.unique(np.linspace(0, len(logs) - 1, count).round().astype(int))
    fig, axes = plt.subplots(len(chosen), 1, figsize=(11, 3.2 * len(chosen)), squeeze=False)
    for ax, i in zip(axes[:, 0], chosen):
        log = logs[i]
        ax.plot(log["time"], log["meas"], "k.", ms=2, label="logged meas")
        for j in np.nonzero(win.log_index == i)[0]:
            t = win.t[j] + log["time"][win.start_row[j]]
            first = j == np.nonzero(win.log_index == i)[0][0]
            ax.plot(t, physical[j], "C0", lw=1.2, label="physical (fitted)" if first else None)
            ax.plot(t, tf[j], "C2", lw=0.9, label="identified TF" if first else None)
        cmd = ax.twinx()
        cmd.plot(log["time"], np.clip(log.flown_command, -3.3, 3.3), "C3", lw=0.4, alpha=0.6)
        cmd.set_ylabel("command (clipped)", color="C3")
        ax.set_title(log.name, fontsize=9)
        ax.set_ylabel("altitude [m]")
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", required=True, help="folder of flight-log CSV files")
    parser.add_argument("--window", type=float, default=5.0, help="multiple-shooting window [s]")
    parser.add_argument("--plot", help="write a PNG of logged vs simulated windows")
    args = parser.parse_args(argv)
    logs = load_logs(args.logs)
    report = fit_blimp(logs, window_s=args.window)
    print(report.table())
    values = ", ".join(f"{f.name}={getattr(report.params, f.name):.4g}"
                       for f in dataclasses.fields(report.params) if f.name != "mass_kg")
    print(f"\nFITTED = BlimpParams({values})")
    if args.plot:
        plot_windows(report, logs, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
