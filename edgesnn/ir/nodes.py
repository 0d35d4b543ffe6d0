"""IR primitives: one small dataclass per population or connection.

Everything is discrete time. One step maps the input I_t a node receives (the sum
of its incoming edges) to its output:

- ``Input(size)``:                  y_t = x_t (the graph's input)
- ``Output(size)``:                 y_t = I_t (the graph's output)
- ``Affine(weight, bias)``:         y_t = W I_t + b
- ``Linear(weight)``:               y_t = W I_t
- ``GroupedLinear(groups, weight)``: the same block W applied to each of ``groups``
                                    consecutive slices: y[g] = W I[g] (e.g. an LMU's
                                    Ā on every memory row, without a dense kron(I, Ā))
- ``LIF(beta, threshold, reset)``:  U_t = β U_{t-1} + I_t − S_{t-1} ϑ   (reset="subtract")
                                    U_t = (1 − S_{t-1}) (β U_{t-1} + I_t) (reset="zero")
                                    S_t = [U_t > ϑ]
- ``CubaLIF(alpha, beta, ...)``:    J_t = α J_{t-1} + I_t, then the LIF update with J_t as input
- ``AdaptiveLIF(alpha, beta, threshold, trace_decay, threshold_weight)``: a CubaLIF
                                    whose thresholds rise with the population's own spike
                                    traces (inhibitory winner-take-all, "IWTA"):
                                    J_t = α J_{t-1} + I_t
                                    Θ_t = ϑ + W_θ X_{t-1}
                                    U_t = β U_{t-1} + J_t − S_{t-1} Θ_{t-1},  S_t = [U_t > Θ_t]
                                    X_t = γ X_{t-1} + S_t
                                    (the reset subtracts the threshold that was crossed)
- ``LI(beta)``:                     U_t = β U_{t-1} + I_t, y_t = U_t (leaky-integrator readout)
- ``Threshold(threshold)``:         y_t = [I_t > ϑ]
- ``SpikeEncoder``:                 per channel c and neuron k of its population,
                                    I_{c,k} = w_{c,k} x_c + b_{c,k} into a LIF (the
                                    "encoding-free" input module); outputs are
                                    channel-major (index c·population + k).

The reset reads the previous step's spike, S_{t-1} = [U_{t-1} > ϑ], as snnTorch
does; spikes fire on strict excess of the threshold. Per-neuron parameters are
arrays of the population's size; scalars broadcast at construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from edgesnn.errors import GraphError

RESETS = ("subtract", "zero")


def _vector(name: str, value, size: int, lo: float | None = None, hi: float | None = None,
            strict_lo: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        arr = np.full(size, arr, dtype=np.float32)
    if arr.shape != (size,):
        raise GraphError(f"{name} has shape {arr.shape}; expected ({size},)")
    if not np.all(np.isfinite(arr)):
        raise GraphError(f"{name} contains NaN or Inf")
    if lo is not None and (np.any(arr <= lo) if strict_lo else np.any(arr < lo)):
        raise GraphError(f"{name} must be {'>' if strict_lo else '>='} {lo}; got min {arr.min():g}")
    if hi is not None and np.any(arr > hi):
        raise GraphError(f"{name} must be <= {hi}; got max {arr.max():g}")
    return arr


def _matrix(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 2 or 0 in arr.shape:
        raise GraphError(f"{name} must be a non-empty 2-D matrix (out, in); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GraphError(f"{name} contains NaN or Inf")
    return arr


def _size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GraphError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _reset(value: str) -> str:
    if value not in RESETS:
        raise GraphError(f"reset must be one of {RESETS}; got {value!r}")
    return value


class Node:
    """Common interface of IR nodes: sizes of the input it sums and of its output."""

    spiking = False  # True when the output is 0/1 spikes

    @property
    def in_size(self) -> int:
        raise NotImplementedError

    @property
    def out_size(self) -> int:
        return self.in_size

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name))
                   if isinstance(getattr(self, f.name), np.ndarray)
                   else getattr(self, f.name) == getattr(other, f.name) for f in fields(self))


class _Population(Node):
    """A node of ``size`` elements in and out."""

    @property
    def in_size(self) -> int:
        return self.size


@dataclass(eq=False)
class Input(_Population):
    size: int

    def __post_init__(self):
        self.size = _size("Input.size", self.size)


@dataclass(eq=False)
class Output(_Population):
    size: int

    def __post_init__(self):
        self.size = _size("Output.size", self.size)


@dataclass(eq=False)
class Affine(Node):
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        self.weight = _matrix("Affine.weight", self.weight)
        self.bias = _vector("Affine.bias", self.bias, self.weight.shape[0])

    @property
    def in_size(self) -> int:
        return self.weight.shape[1]

    @property
    def out_size(self) -> int:
        return self.weight.shape[0]


@dataclass(eq=False)
class Linear(Node):
    weight: np.ndarray

    def __post_init__(self):
        self.weight = _matrix("Linear.weight", self.weight)

    @property
    def in_size(self) -> int:
        return self.weight.shape[1]

    @property
    def out_size(self) -> int:
        return self.weight.shape[0]


@dataclass(eq=False)
class GroupedLinear(Node):
    groups: int
    weight: np.ndarray  # (out per group, in per group), shared by all groups

    def __post_init__(self):
        self.groups = _size("GroupedLinear.groups", self.groups)
        self.weight = _matrix("GroupedLinear.weight", self.weight)

    @property
    def in_size(self) -> int:
        return self.groups * self.weight.shape[1]

    @property
    def out_size(self) -> int:
        return self.groups * self.weight.shape[0]


@dataclass(eq=False)
class LIF(_Population):
    size: int
    beta: np.ndarray
    threshold: np.ndarray
    reset: str = "subtract"
    spiking = True

    def __post_init__(self):
        self.size = _size("LIF.size", self.size)
        self.beta = _vector("LIF.beta", self.beta, self.size, 0.0, 1.0)
        self.threshold = _vector("LIF.threshold", self.threshold, self.size, 0.0, strict_lo=True)
        self.reset = _reset(self.reset)


@dataclass(eq=False)
class CubaLIF(_Population):
    size: int
    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    reset: str = "subtract"
    spiking = True

    def __post_init__(self):
        self.size = _size("CubaLIF.size", self.size)
        self.alpha = _vector("CubaLIF.alpha", self.alpha, self.size, 0.0, 1.0)
        self.beta = _vector("CubaLIF.beta", self.beta, self.size, 0.0, 1.0)
        self.threshold = _vector("CubaLIF.threshold", self.threshold, self.size, 0.0, strict_lo=True)
        self.reset = _reset(self.reset)


@dataclass(eq=False)
class AdaptiveLIF(_Population):
    size: int
    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray  # base threshold ϑ
    trace_decay: np.ndarray
    threshold_weight: np.ndarray  # W_θ (size, size): trace of neuron j → threshold of i
    reset: str = "subtract"
    spiking = True

    def __post_init__(self):
        self.size = _size("AdaptiveLIF.size", self.size)
        self.alpha = _vector("AdaptiveLIF.alpha", self.alpha, self.size, 0.0, 1.0)
        self.beta = _vector("AdaptiveLIF.beta", self.beta, self.size, 0.0, 1.0)
        self.threshold = _vector("AdaptiveLIF.threshold", self.threshold, self.size, 0.0,
                                 strict_lo=True)
        self.trace_decay = _vector("AdaptiveLIF.trace_decay", self.trace_decay, self.size, 0.0, 1.0)
        self.threshold_weight = _matrix("AdaptiveLIF.threshold_weight", self.threshold_weight)
        if self.threshold_weight.shape != (self.size, self.size):
            raise GraphError(f"AdaptiveLIF.threshold_weight has shape {self.threshold_weight.shape}; "
                             f"expected ({self.size}, {self.size})")
        self.reset = _reset(self.reset)


@dataclass(eq=False)
class LI(_Population):
    size: int
    beta: np.ndarray

    def __post_init__(self):
        self.size = _size("LI.size", self.size)
        self.beta = _vector("LI.beta", self.beta, self.size, 0.0, 1.0)


@dataclass(eq=False)
class Threshold(_Population):
    size: int
    threshold: np.ndarray
    spiking = True

    def __post_init__(self):
        self.size = _size("Threshold.size", self.size)
        self.threshold = _vector("Threshold.threshold", self.threshold, self.size)


@dataclass(eq=False)
class SpikeEncoder(Node):
    """Per-channel Linear(1 → population) feeding a LIF population per channel."""

    channels: int
    population: int
    weight: np.ndarray
    bias: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    reset: str = "subtract"
    spiking = True

    def __post_init__(self):
        self.channels = _size("SpikeEncoder.channels", self.channels)
        self.population = _size("SpikeEncoder.population", self.population)
        n = self.channels * self.population

        def flat(v):  # (channels, population) arrays are stored channel-major
            return np.ravel(v) if np.ndim(v) else v

        self.weight = _vector("SpikeEncoder.weight", flat(self.weight), n)
        self.bias = _vector("SpikeEncoder.bias", flat(self.bias), n)
        self.beta = _vector("SpikeEncoder.beta", flat(self.beta), n, 0.0, 1.0)
        self.threshold = _vector("SpikeEncoder.threshold", flat(self.threshold), n, 0.0,
                                 strict_lo=True)
        self.reset = _reset(self.reset)

    @property
    def in_size(self) -> int:
        return self.channels

    @property
    def out_size(self) -> int:
        return self.channels * self.population


NODE_TYPES: dict[str, type[Node]] = {
    cls.__name__: cls
    for cls in (Input, Output, Affine, Linear, GroupedLinear, LIF, CubaLIF, AdaptiveLIF, LI,
                Threshold, SpikeEncoder)
}
# Populations whose input current and state share one scale in fixed point.
NEURONS: tuple[type[Node], ...] = (LIF, CubaLIF, AdaptiveLIF, LI, Threshold)
