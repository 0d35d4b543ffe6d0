"""Rebuild the shipped demo L2MU (edgesnn/assets/l2mu-synthetic.esnn).

    python tools/make_l2mu_demo.py

It is trained on the seeded synthetic IMU generator (edgesnn.data.har.synthetic), not
on real recordings: a demo of the pipeline, not a model for real wrists.
"""

import sys

from edgesnn.cli import main
from edgesnn.models.reference import L2MU_DEMO_MODEL

if __name__ == "__main__":
    sys.exit(main(["train", "l2mu", "--data", "synthetic", "--seed", "0",
                   "--out", str(L2MU_DEMO_MODEL)]))
