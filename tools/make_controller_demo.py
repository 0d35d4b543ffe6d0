"""Rebuild the shipped evolved blimp controllers (edgesnn/assets/snn-pd-lif.esnn and
snn-i-lif.esnn), then fly them next to the PID.

    python tools/make_controller_demo.py --logs path/to/blimp_flights

The PD is the README's run: evolved from the PD ladder on the real flight logs with
the LIF-SNN flight held out (its held-out loss is the README's number), every
individual also flown on the fitted blimp. The I is then evolved from the I ladder
on simulated double-integrator flights, flown together with that PD. Both runs are
seeded; about 25 minutes on two cores.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from edgesnn.cli import main
from edgesnn.controllers.snn_controller import SHIPPED_I, SHIPPED_PD

HELD_OUT_FLIGHT = "2023-09-01-18-10-27"
FLIGHT_WEIGHT = "2"  # per metre of (worst overshoot + steady band): see docs/controllers.md


def commands(logs: Path, scratch: Path) -> list[list[str]]:
    pd = ["evolve", "--target", "pd", "--logs", str(logs), "--test-flights", HELD_OUT_FLIGHT,
          "--init", "ladder", "--generations", "2500", "--sequences-per-generation", "3",
          "--engine", "serial", "--flight-weight", FLIGHT_WEIGHT,
          "--checkpoint", str(scratch / "pd.ckpt.npz"), "--out", str(SHIPPED_PD)]
    i = ["evolve", "--target", "i", "--init", "ladder", "--generations", "1000",
         "--engine", "serial", "--flight-weight", FLIGHT_WEIGHT, "--fly-with", str(SHIPPED_PD),
         "--checkpoint", str(scratch / "i.ckpt.npz"), "--out", str(SHIPPED_I)]
    fly = ["sim", "--controller", "pid", "--controller", "snn", "--logs", str(logs)]
    return [pd, i, fly]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, required=True, help="folder of the blimp flight logs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for command in commands(args.logs, Path(scratch)):
            code = main(command)
            if code:
                sys.exit(code)
