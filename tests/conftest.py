import numpy as np
import pytest

import edgesnn
from edgesnn.ir import LI, LIF, Affine, CubaLIF, Graph, Input, Linear, Output, SpikeEncoder
from edgesnn.models.reference import REFERENCE_MODEL


@pytest.fixture(scope="session")
def reference_model():
    return edgesnn.load_model(REFERENCE_MODEL)


def mixed_graph(seed: int = 0) -> Graph:
    """Encoder → CuBa-LIF with a recurrent loop → LI readout: every state kind at once."""
    rng = np.random.default_rng(seed)
    return Graph(
        {"in": Input(3),
         "enc": SpikeEncoder(3, 4, rng.normal(0, 1.5, (3, 4)), rng.normal(0, 0.2, (3, 4)), 0.8, 0.5),
         "fc": Affine(rng.normal(0, 0.6, (8, 12)), rng.normal(0, 0.1, 8)),
         "hid": CubaLIF(8, 0.6, 0.85, 1.0),
         "rec": Linear(rng.normal(0, 0.4, (8, 8))),
         "ro": Linear(rng.normal(0, 0.5, (2, 8))),
         "li": LI(2, 0.9),
         "out": Output(2)},
        [("in", "enc"), ("enc", "fc"), ("fc", "hid"), ("rec", "hid"), ("hid", "ro"),
         ("ro", "li"), ("li", "out")],
        recurrent=[("hid", "rec")], dt=0.01)


def sensor_like(seed: int, sequences: int = 4, steps: int = 150, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[None, :, None]
    f = rng.uniform(0.01, 0.08, (sequences, 1, channels))
    return (np.sin(2 * np.pi * f * t) + 0.2 * rng.normal(size=(sequences, steps, channels))
            ).astype(np.float32)


@pytest.fixture(scope="session")
def mixed_model():
    return edgesnn.quantize(edgesnn.Model(mixed_graph(), metadata={"name": "mixed"}),
                            sensor_like(seed=1))
