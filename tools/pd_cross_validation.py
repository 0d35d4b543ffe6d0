"""Leave-one-flight-out evaluation of the evolved SNN PD controller on the real logs.

    python tools/pd_cross_validation.py --logs DATA/blimp_flights [--generations 2500]

For every flight in the folder, one ``edgesnn evolve`` run trains on the other
flights and is scored on that one (segments of a flight overlap, so a flight is
held out whole). The table puts side by side, on the same held-out errors and
target: the evolved controller, the P term alone (9·e: what a controller without
any derivative reaches), and the SNN the paper flew on that flight (its logged
output), where there is one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: see evolve's note

import numpy as np

from edgesnn.cli import main
from edgesnn.controllers.flight_logs import flight_id, load_logs
from edgesnn.controllers.mimic_data import PD_GAINS, log_sequences
from edgesnn.controllers.network import mimic_loss


def main_(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logs", type=Path, required=True, help="flight-log folder")
    ap.add_argument("--generations", type=int, default=2500)
    ap.add_argument("--sequences-per-generation", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("pd_folds"), help="folder for the fold models")
    args = ap.parse_args(argv)
    if not args.logs.is_dir():
        print(f"no flight logs at {args.logs}; nothing to evaluate", file=sys.stderr)
        return 1
    logs = load_logs(args.logs)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for flight in sorted({flight_id(log) for log in logs}):
        held = [log for log in logs if flight_id(log) == flight]
        data = log_sequences(held)
        p_only = np.mean([mimic_loss(PD_GAINS.kp * e, t) for e, t in zip(data.errors, data.targets)])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["evolve", "--target", "pd", "--logs", str(args.logs), "--test-flights", flight,
                       "--init", "ladder", "--generations", str(args.generations),
                       "--sequences-per-generation", str(args.sequences_per_generation),
                       "--engine", "serial", "--seed", str(args.seed),
                       "--out", str(args.out / f"pd_{flight}.esnn"), "--json"])
        if rc:
            return rc
        report = json.loads(out.getvalue())
        paper = report["paper_flown_snn"]
        rows.append((flight, held[0].controller, len(held), report["test_loss"], p_only,
                     float(np.mean(list(paper.values()))) if paper else None, report["seconds"]))
        print(f"{flight}: held-out loss {report['test_loss']:.3f} ({report['seconds']:.0f} s)",
              file=sys.stderr)
    print(f"\n{'held-out flight':<22}{'flown by':>9}{'segments':>9}{'SNN (ours)':>12}"
          f"{'P only':>8}{'paper SNN':>11}{'ours/paper':>12}{'run s':>7}")
    for flight, flown_by, n, ours, p_only, paper, seconds in rows:
        ratio = f"{ours / paper:12.2f}" if paper else f"{'—':>12}"
        paper_text = f"{paper:11.3f}" if paper else f"{'—':>11}"
        print(f"{flight:<22}{flown_by:>9}{n:>9}{ours:12.3f}{p_only:8.3f}{paper_text}{ratio}{seconds:7.0f}")
    weights = np.array([r[2] for r in rows])
    mean = float(np.average([r[3] for r in rows], weights=weights))
    print(f"{'all segments':<22}{'':>9}{weights.sum():>9}{mean:12.3f}"
          f"{np.average([r[4] for r in rows], weights=weights):8.3f}")
    print("loss = MAE + (1 - Pearson rho) against Kp*e - Kd*d(meas)/dt; lower is better")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
