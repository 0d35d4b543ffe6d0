"""edgesnn: compact, quantized spiking neural networks for robot sensing-to-action loops.

    rt = edgesnn.load("model.esnn", backend="numpy-int")
    y = rt.step(x)          # one sample
    ys = rt.run(xs)         # a whole sequence
    rt.reset()

The device-side runtime (ir, compile, backends, model files) imports numpy only.
"""

__version__ = "0.1.0"

from edgesnn.compile import Program, Quantization, calibrate, compile_graph  # noqa: E402
from edgesnn.modelfile import Model, load_model, save  # noqa: E402
from edgesnn.runtime import Runtime, load  # noqa: E402

__all__ = ["load", "load_model", "save", "Model", "Runtime", "Program", "Quantization",
           "calibrate", "compile_graph", "quantize", "__version__"]


def quantize(model: Model, calibration, progress: bool = False) -> Model:
    """A copy of ``model`` with post-training quantization chosen on ``calibration``
    sequences ((T, features) arrays or one (N, T, features) array)."""
    return Model(graph=model.graph, quantization=calibrate(model.graph, calibration, progress),
                 metadata=dict(model.metadata))
