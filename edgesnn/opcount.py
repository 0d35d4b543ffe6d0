"""Synaptic operations: the accumulates an event-driven kernel actually performs.

A connection costs one accumulate per non-zero input per output it fans out to; spikes
are mostly zero, which is where an SNN saves work. Neuron updates are not counted.
"""

from __future__ import annotations

import numpy as np

from edgesnn.compile import Program


def synaptic_ops_per_sequence(program: Program, xs: np.ndarray) -> float:
    """Mean synaptic operations per sequence of ``xs`` (N, T, features), from fresh state."""
    xs = program.check_input(xs, time_axis=True)
    xs = xs[None] if xs.ndim == 2 else xs
    fan_out = {}
    for op in program.ops:
        if op.kind == "affine":
            fan_out[op.name] = op.size
        elif op.kind == "grouped":
            fan_out[op.name] = op.params["weight"].shape[0]
        elif op.kind == "encoder":
            fan_out[op.name] = op.attrs["population"]
    total = 0

    def observe(name, inp, out, updates):
        nonlocal total
        if name in fan_out:
            total += int(np.count_nonzero(inp)) * fan_out[name]

    state = program.init_state(xs.shape[0])
    xq = program.quantize_input(xs)
    for t in range(xs.shape[1]):
        _, state = program.core_step(state, xq[:, t], observe)
    return total / xs.shape[0]
