"""Reference step kernels, one per op kind, in float32 and in fixed point.

A kernel maps (op, summed input, state) to (output, updated state entries) and never
mutates its arguments. The fixed-point kernels follow edgesnn.compile.fixed exactly;
the generated C and the firmware must reproduce them bit for bit.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgesnn.compile.fixed import DECAY_SHIFT, TRACE_ONE, mul_q, saturate32

# ---------------------------------------------------------------------------- float32


def lif_float(beta, threshold, reset, v, current, last_threshold=None):
    """The LIF membrane update, shared by every spiking population and by the batched
    controller evolution (parameters broadcast against ``v``). ``last_threshold`` is
    the threshold of the previous step when it adapts (default: ``threshold``)."""
    last = threshold if last_threshold is None else last_threshold
    fired = v > last  # S_{t-1}
    v = (beta * v).astype(np.float32, copy=False)  # a new array: safe to update in place
    v += current
    if reset == "subtract":
        np.subtract(v, last, out=v, where=fired)
    else:
        v[fired] = 0
    return (v > threshold).astype(np.float32), v


def f_affine(op, x, state):
    y = x @ op.params["weight"].T
    if "bias" in op.params:
        y = y + op.params["bias"]
    return y.astype(np.float32, copy=False), {}


def f_grouped(op, x, state):
    w = op.params["weight"]
    y = x.reshape(x.shape[0], -1, w.shape[1]) @ w.T
    return y.reshape(x.shape[0], -1).astype(np.float32, copy=False), {}


def f_lif(op, x, state):
    p = op.params
    s, v = lif_float(p["beta"], p["threshold"], op.attrs["reset"], state[op.name + ".v"], x)
    return s, {op.name + ".v": v}


def f_cuba_lif(op, x, state):
    p = op.params
    i = (p["alpha"] * state[op.name + ".i"] + x).astype(np.float32)
    s, v = lif_float(p["beta"], p["threshold"], op.attrs["reset"], state[op.name + ".v"], i)
    return s, {op.name + ".v": v, op.name + ".i": i}


def f_adaptive_lif(op, x, state):
    p, n = op.params, op.name
    i = (p["alpha"] * state[n + ".i"] + x).astype(np.float32)
    thr = (p["threshold"] + state[n + ".trace"] @ p["threshold_weight"].T).astype(np.float32)
    s, v = lif_float(p["beta"], thr, op.attrs["reset"], state[n + ".v"], i, state[n + ".thr"])
    trace = (p["trace_decay"] * state[n + ".trace"] + s).astype(np.float32)
    return s, {n + ".v": v, n + ".i": i, n + ".trace": trace, n + ".thr": thr}


def f_li(op, x, state):
    v = (op.params["beta"] * state[op.name + ".v"] + x).astype(np.float32)
    return v, {op.name + ".v": v}


def f_threshold(op, x, state):
    return (x > op.params["threshold"]).astype(np.float32), {}


def f_encoder(op, x, state):
    p = op.params
    current = np.repeat(x, op.attrs["population"], axis=-1) * p["weight"] + p["bias"]
    s, v = lif_float(p["beta"], p["threshold"], op.attrs["reset"], state[op.name + ".v"], current)
    return s, {op.name + ".v": v}


def f_output(op, x, state):
    return x, {}


FLOAT_KERNELS: dict[str, Callable] = {
    "affine": f_affine, "grouped": f_grouped, "lif": f_lif, "cuba_lif": f_cuba_lif,
    "adaptive_lif": f_adaptive_lif, "li": f_li, "threshold": f_threshold, "encoder": f_encoder,
    "output": f_output,
}

# ------------------------------------------------------------------------ fixed point
# Inputs arrive as int64 sums; state is int32; spikes are int8 0/1.


def _decay(v, q):
    return mul_q(v, q, DECAY_SHIFT)


def _lif_fixed(beta, threshold, reset, v, current, last_threshold=None):
    last = threshold if last_threshold is None else last_threshold
    v = v.astype(np.int64)
    fired = v > last
    if reset == "subtract":
        v = saturate32(_decay(v, beta) + current - fired * last.astype(np.int64))
    else:
        v = np.where(fired, 0, saturate32(_decay(v, beta) + current))
    v = v.astype(np.int32)
    return (v > threshold).astype(np.int8), v


def _int_matmul(x, op):
    """Integer x @ W (the cached transposed weight). float64 BLAS gives the exact integer
    result whenever every partial sum stays below 2**53 — bounded by max|x| times the
    largest column sum of |W| — which is the usual case and much faster than numpy's
    int64 loops; otherwise the int64 product."""
    if x.size and float(np.abs(x).max()) * op.cache["weight_bound"] < 2.0 ** 53:
        return np.matmul(x.astype(np.float64), op.cache["weight_t_f64"]).astype(np.int64)
    return np.matmul(x, op.cache["weight_t64"])


def _requantize(acc, op):
    """int64 accumulator → saturate to int32 → rescale per output channel."""
    return mul_q(saturate32(acc), op.params["multiplier"], op.params["shift"]).astype(np.int32)


def q_affine(op, x, state):
    acc = _int_matmul(x, op)
    if "bias" in op.params:
        acc = acc + op.params["bias"]
    return _requantize(acc, op), {}


def q_grouped(op, x, state):
    acc = _int_matmul(x.reshape(x.shape[0], -1, op.params["weight"].shape[1]), op)
    return _requantize(acc, op).reshape(x.shape[0], -1), {}


def q_lif(op, x, state):
    p = op.params
    s, v = _lif_fixed(p["beta"], p["threshold"], op.attrs["reset"], state[op.name + ".v"], x)
    return s, {op.name + ".v": v}


def q_cuba_lif(op, x, state):
    p = op.params
    i = saturate32(_decay(state[op.name + ".i"], p["alpha"]) + x)
    s, v = _lif_fixed(p["beta"], p["threshold"], op.attrs["reset"], state[op.name + ".v"], i)
    return s, {op.name + ".v": v, op.name + ".i": i.astype(np.int32)}


def q_adaptive_lif(op, x, state):
    p, n = op.params, op.name
    i = saturate32(_decay(state[n + ".i"], p["alpha"]) + x)
    adapt = mul_q(saturate32(state[n + ".trace"].astype(np.int64) @ op.cache["threshold_weight_t64"]),
                  p["threshold_multiplier"], p["threshold_shift"])
    thr = saturate32(p["threshold"].astype(np.int64) + adapt)
    s, v = _lif_fixed(p["beta"], thr, op.attrs["reset"], state[n + ".v"], i, state[n + ".thr"])
    trace = saturate32(_decay(state[n + ".trace"], p["trace_decay"]) + s.astype(np.int64) * TRACE_ONE)
    return s, {n + ".v": v, n + ".i": i.astype(np.int32), n + ".trace": trace.astype(np.int32),
               n + ".thr": thr.astype(np.int32)}


def q_li(op, x, state):
    v = saturate32(_decay(state[op.name + ".v"], op.params["beta"]) + x).astype(np.int32)
    return v, {op.name + ".v": v}


def q_threshold(op, x, state):
    return (x > op.params["threshold"]).astype(np.int8), {}


def q_encoder(op, x, state):
    p = op.params
    acc = np.repeat(x, op.attrs["population"], axis=-1) * p["weight"].astype(np.int64) + p["bias"]
    s, v = _lif_fixed(p["beta"], p["threshold"], op.attrs["reset"], state[op.name + ".v"],
                      _requantize(acc, op).astype(np.int64))
    return s, {op.name + ".v": v}


def q_output(op, x, state):
    return saturate32(x).astype(np.int32), {}


FIXED_KERNELS: dict[str, Callable] = {
    "affine": q_affine, "grouped": q_grouped, "lif": q_lif, "cuba_lif": q_cuba_lif,
    "adaptive_lif": q_adaptive_lif, "li": q_li, "threshold": q_threshold, "encoder": q_encoder, "output": q_output,
}
