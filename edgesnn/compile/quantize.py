"""Post-training quantization: calibrate scales on a few float sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from edgesnn.compile import fixed
from edgesnn.compile.program import Program, compile_graph
from edgesnn.errors import QuantizationError
from edgesnn.ir import CONNECTIONS, NEURONS, Graph, Input, SpikeEncoder


@dataclass
class Quantization:
    """What turns a float graph into a fixed-point Program.

    ``scales[node]`` is the real value of one integer step: for an Input its quantized
    values, for Affine/Linear their outputs, for neurons (and Threshold) their input
    current and state. ``error`` is the float-vs-fixed output error measured on the
    calibration data (what ``edgesnn info`` reports).
    """

    scales: dict[str, float]
    error: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, int] = field(default_factory=dict)


def _as_sequences(calibration, input_size: int) -> list[np.ndarray]:
    seqs = [calibration] if isinstance(calibration, np.ndarray) else list(calibration)
    out = []
    for s in seqs:
        s = np.asarray(s, dtype=np.float32)
        out.extend([s] if s.ndim == 2 else list(s) if s.ndim == 3 else [None])
    if not out or any(s is None or s.shape[-1] != input_size or len(s) == 0 for s in out):
        raise QuantizationError(f"calibration data must be sequences of shape (T, {input_size}) "
                                f"or (N, T, {input_size})")
    if not all(np.all(np.isfinite(s)) for s in out):
        raise QuantizationError("calibration data contains NaN or Inf")
    return out


def calibrate(graph: Graph, calibration: Iterable[np.ndarray] | np.ndarray,
              progress: bool = False) -> Quantization:
    """Choose scales from the float program's value ranges on the calibration sequences,
    then measure the fixed-point program's output error on the same sequences."""
    program = compile_graph(graph)
    seqs = _as_sequences(calibration, program.input_size)
    peak: dict[str, float] = {n: 0.0 for n in graph.nodes}

    def observe(name, inp, out, updates):
        # traces count spikes in their own fixed format (docs/fixed-point.md)
        arrays = [inp] + [u for k, u in updates.items() if not k.endswith(".trace")]
        if not graph.nodes[name].spiking:
            arrays.append(out)
        peak[name] = max(peak[name], *(float(np.abs(a).max()) for a in arrays))

    from tqdm.auto import tqdm
    for seq in tqdm(seqs, desc="calibrating", unit="seq", disable=not progress):
        state = program.init_state(1)
        peak[graph.inputs()[0]] = max(peak[graph.inputs()[0]], float(np.abs(seq).max()))
        for x in seq:
            _, state = program.core_step(state, x[None], observe)

    scales: dict[str, float] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, NEURONS + (SpikeEncoder,)):
            thr = float(np.abs(node.threshold).max()) if hasattr(node, "threshold") else 0.0
            scales[name] = fixed.scale_for(max(peak[name], thr))
        elif isinstance(node, Input):
            scales[name] = fixed.scale_for(peak[name])
    for name, node in graph.nodes.items():
        if isinstance(node, CONNECTIONS):
            consumers = [d for s, d in graph.edges + graph.recurrent if s == name]
            feeds_neuron = len(consumers) == 1 and isinstance(graph.nodes[consumers[0]], NEURONS)
            # Requantize straight into the neuron's scale: no conversion on the edge.
            scales[name] = scales[consumers[0]] if feeds_neuron else fixed.scale_for(peak[name])

    quant = Quantization(scales=scales, calibration={"sequences": len(seqs),
                                                     "steps": int(sum(len(s) for s in seqs))})
    quant.error = measure_error(program, compile_graph(graph, quant), seqs)
    return quant


def measure_error(float_program: Program, fixed_program: Program,
                  seqs: list[np.ndarray]) -> dict[str, float]:
    """Output error of the fixed-point program against the float one, over all steps.

    For spike outputs the mean absolute error is the fraction of output spikes that
    differ; for value outputs compare it with ``output_peak``."""
    diffs, peaks = [], []
    for seq in seqs:
        yf, _ = float_program.run(float_program.init_state(1), seq)
        yq, _ = fixed_program.run(fixed_program.init_state(1), seq)
        diffs.append(np.abs(yf - yq).ravel())
        peaks.append(float(np.abs(yf).max()))
    per_sequence = [float(d.mean()) for d in diffs]
    d = np.concatenate(diffs)
    return {"output_mean_abs_error": float(d.mean()), "output_max_abs_error": float(d.max()),
            "output_peak": max(peaks), "sequence_mean_abs_error_min": min(per_sequence),
            "sequence_mean_abs_error_max": max(per_sequence)}
