"""Run evolved controller models (edgesnn model files) as controllers in a loop."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np

from edgesnn.controllers.network import ControllerSpec
from edgesnn.controllers.pid import PID, PIDGains
from edgesnn.errors import ModelFileError
from edgesnn.modelfile import Model, load_model
from edgesnn.runtime import Runtime

__all__ = ["SNNController", "controller_spec", "controller_parameters", "load_controller",
           "SHIPPED_PD", "SHIPPED_I", "NAMED_CONTROLLERS"]

# Evolved controllers shipped for the demo and as ``edgesnn sim`` defaults; rebuilt by
# tools/make_controller_demo.py.
SHIPPED_PD = Path(str(files("edgesnn") / "assets" / "snn-pd-lif.esnn"))
SHIPPED_I = Path(str(files("edgesnn") / "assets" / "snn-i-lif.esnn"))

NAMED_CONTROLLERS = {
    "pid": "the onboard PID (gains of the flight logs)",
    "pd": "the onboard PID with its integrator off",
    "snn": "the shipped evolved SNN PD + SNN I",
    "snn-pd": "the shipped evolved SNN PD alone",
}


def controller_spec(model: Model) -> ControllerSpec:
    """The controller structure recorded in a model's metadata."""
    info = model.metadata.get("controller")
    if not isinstance(info, dict):
        raise ModelFileError(f"model {model.metadata.get('name', '?')!r} is not an evolved "
                             "controller (no 'controller' metadata)")
    try:
        return ControllerSpec(info["target"], info["variant"], int(info["neurons"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"controller metadata is malformed ({exc})") from None


def controller_parameters(model: Model) -> np.ndarray:
    """The evolved parameter vector recorded in a model's metadata, checked against
    its structure (length and bounds)."""
    spec = controller_spec(model)
    try:
        vector = np.asarray(model.metadata["controller"]["parameters"], np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"controller metadata has no readable parameter vector ({exc})") from None
    if vector.shape != (spec.layout.size,) or not spec.layout.within_bounds(vector):
        raise ModelFileError(f"controller parameters do not fit a {spec} controller "
                             f"({vector.size} values, {spec.layout.size} expected, within bounds)")
    return vector


class SNNController:
    """Sum of one or more controller models (e.g. an SNN PD plus an SNN I), each a
    1-input/1-output model stepped once per control period on a batch of errors."""

    def __init__(self, models: list[Model], backend: str = "numpy-float"):
        for m in models:
            controller_spec(m)
        self.runtimes = [Runtime(m, backend) for m in models]

    def reset(self) -> None:
        for rt in self.runtimes:
            rt.reset()

    def __call__(self, error: np.ndarray) -> np.ndarray:
        x = np.asarray(error, np.float32).reshape(-1, 1)
        return sum(rt.step(x)[:, 0].astype(np.float64) for rt in self.runtimes)


def load_controller(name: str, backend: str = "numpy-float", batch: int = 1):
    """One of :data:`NAMED_CONTROLLERS`, or model paths joined by ``+`` (``pd.esnn+i.esnn``)."""
    if name == "pid":
        return PID(PIDGains(), batch=batch)
    if name == "pd":
        return PID(PIDGains(ki=0.0), batch=batch)
    shipped = {"snn": [SHIPPED_PD, SHIPPED_I], "snn-pd": [SHIPPED_PD]}
    paths = shipped.get(name) or [Path(p) for p in name.split("+")]
    return SNNController([load_model(p) for p in paths], backend)
