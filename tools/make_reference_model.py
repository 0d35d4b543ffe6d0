"""Rebuild the shipped reference network and its input (edgesnn/assets/).

    python tools/make_reference_model.py

The network has random (seeded) weights: it is a workload for benchmarks and the demo,
not a trained model. Calibration uses the first 3 input sequences.
"""

import numpy as np

import edgesnn
from edgesnn.models.reference import REFERENCE_INPUT, REFERENCE_MODEL, lif_mlp, reference_input


def main() -> None:
    xs = reference_input(size=64, steps=200, sequences=4, seed=1)
    model = edgesnn.quantize(lif_mlp((64, 128, 10), seed=0), xs[:3])
    REFERENCE_MODEL.parent.mkdir(parents=True, exist_ok=True)
    size = edgesnn.save(model, REFERENCE_MODEL)
    np.savez_compressed(REFERENCE_INPUT, x=xs)
    print(f"wrote {REFERENCE_MODEL} ({size:,} bytes) and {REFERENCE_INPUT} {xs.shape}")


if __name__ == "__main__":
    main()
