"""Rebuild the shipped blimp controllers (edgesnn/assets/controller-pd.esnn, controller-i.esnn).

    python tools/make_controllers.py [--logs DIR] [--generations N]

The PD part is evolved on simulated flights of the fitted blimp model, plus the
real flight logs' errors when --logs points at them; the I part on simulated
double-integrator flights. Both with the `edgesnn evolve` command, fixed seeds.
"""

import argparse
import sys

from edgesnn.cli import main
from edgesnn.models.reference import CONTROLLER_I, CONTROLLER_PD

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", help="real flight-log folder (optional)")
    parser.add_argument("--generations", default="3000")
    args = parser.parse_args()
    pd = ["evolve", "--target", "pd", "--variant", "lif", "--generations", args.generations,
          "--seed", "0", "--out", str(CONTROLLER_PD)]
    i = ["evolve", "--target", "i", "--variant", "r-lif", "--generations", args.generations,
         "--seed", "0", "--out", str(CONTROLLER_I)]
    sys.exit(main(pd + (["--logs", args.logs] if args.logs else [])) or main(i))
