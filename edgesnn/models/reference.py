"""A plain feed-forward LIF network: the reference workload for benchmarks and the demo."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Sequence

import numpy as np

from edgesnn.ir import LIF, Affine, Graph, Input, Output
from edgesnn.modelfile import Model

# Shipped with the package (rebuild with tools/make_reference_model.py).
REFERENCE_MODEL = Path(str(files("edgesnn") / "assets" / "reference-lif-64-128-10.esnn"))
REFERENCE_INPUT = Path(str(files("edgesnn") / "assets" / "reference-input.npz"))
# An L2MU trained on the synthetic IMU generator (rebuild with tools/make_l2mu_demo.py).
L2MU_DEMO_MODEL = Path(str(files("edgesnn") / "assets" / "l2mu-synthetic.esnn"))
# A place-recognition ensemble of the synthetic route with these settings (rebuild with
# tools/make_vpr_demo.py); the demo re-renders the route's traverses from them.
VPR_DEMO_MODEL = Path(str(files("edgesnn") / "assets" / "vpr-synthetic.esnn"))
VPR_DEMO_ROUTE = {"places": 24, "seed": 0}
# Recorded sensor data for the demo's replay node (rebuild with tools/make_demo_bag.py).
DEMO_SENSOR_BAG = Path(str(files("edgesnn") / "assets" / "demo_sensors.mcap"))


def lif_mlp(sizes: Sequence[int] = (64, 128, 10), beta: float = 0.9, threshold: float = 1.0,
            seed: int = 0, dt: float = 1e-3) -> Model:
    """Input → (Affine → LIF) per layer → Output, with seeded Xavier-normal weights;
    on ``reference_input`` the layers fire on roughly 20–40 % of steps."""
    if len(sizes) < 2:
        raise ValueError("sizes needs an input size and at least one layer size")
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(sizes[0])}
    edges = []
    prev = "input"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        gain = 1.0 if i == 1 else 2.0  # spike inputs are sparse: deeper layers need more gain
        w = rng.normal(0.0, gain * np.sqrt(2.0 / (n_in + n_out)), (n_out, n_in))
        nodes[f"fc{i}"] = Affine(w, np.zeros(n_out))
        nodes[f"lif{i}"] = LIF(n_out, beta, threshold)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = Output(sizes[-1])
    edges.append((prev, "output"))
    return Model(Graph(nodes, edges, dt=dt),
                 metadata={"name": f"lif-mlp-{'-'.join(map(str, sizes))}",
                           "task": "reference workload (random weights)", "seed": seed})


def reference_input(size: int = 64, steps: int = 200, sequences: int = 1, seed: int = 1) -> np.ndarray:
    """Unit-variance sinusoids with noise: a smooth multichannel sensor-like signal."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[None, :, None]
    freq = rng.uniform(0.005, 0.05, (sequences, 1, size))
    phase = rng.uniform(0, 2 * np.pi, (sequences, 1, size))
    x = np.sqrt(2) * np.sin(2 * np.pi * freq * t + phase) + 0.3 * rng.normal(size=(sequences, steps, size))
    return x.astype(np.float32)
