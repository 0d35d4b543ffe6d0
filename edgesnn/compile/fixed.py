"""Fixed-point arithmetic shared by the integer kernels (and mirrored by the C runtime).

Rounding rule: every rescale is ``round_shift(v, s) = (v + 2**(s-1)) >> s`` on int64
with an arithmetic shift, i.e. round to nearest with ties toward +infinity. Products
are formed in int64 from int32 operands, so they never overflow; results are
saturated to int32 before they are stored. No float is used at run time.
"""

from __future__ import annotations

import math

import numpy as np

from edgesnn.errors import QuantizationError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
DECAY_SHIFT = 30  # decays β, α are Q2.30 multipliers: β_q = round(β · 2**30)
TARGET = 2.0**14  # calibrated max |value| maps here: 2**17 of headroom in int32 state
MAX_SHIFT = 62
TRACE_ONE = 2**16  # a spike adds one to a trace: traces are Q15.16


_LO, _HI = np.int64(INT32_MIN), np.int64(INT32_MAX)


def saturate32(v: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(v, _LO), _HI)  # np.clip costs ~10x more on small arrays


def round_shift(v: np.ndarray, shift) -> np.ndarray:
    """Divide int64 ``v`` by 2**shift, rounding to nearest, ties toward +inf.

    Equal to (v + 2**(shift-1)) >> shift, written as floor plus the first dropped bit
    so that it cannot overflow for any int64 ``v``."""
    shift = np.asarray(shift, dtype=np.int64)
    return (v >> shift) + ((v >> (shift - 1)) & 1)


def mul_q(v: np.ndarray, multiplier, shift) -> np.ndarray:
    """Saturated ``v · multiplier · 2**-shift`` for int32-range ``v`` (int64 result)."""
    return saturate32(round_shift(v.astype(np.int64) * np.asarray(multiplier, np.int64), shift))


def quantize_decay(decay: np.ndarray) -> np.ndarray:
    return np.round(decay.astype(np.float64) * 2.0**DECAY_SHIFT).astype(np.int32)


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Represent positive reals as int32 ``m`` in [2**30, 2**31) and a right ``shift``
    so that real ≈ m · 2**-shift (relative error ≤ 2**-31)."""
    real = np.atleast_1d(np.asarray(real, dtype=np.float64))
    m = np.zeros(real.shape, dtype=np.int64)
    shift = np.ones(real.shape, dtype=np.int64)
    for idx, r in np.ndenumerate(real):
        if r == 0:
            continue
        if not (r > 0 and math.isfinite(r)):
            raise QuantizationError(f"rescale factor {r!r} is not a positive finite number")
        frac, exp = math.frexp(r)  # r = frac · 2**exp, frac in [0.5, 1)
        mi, sh = int(round(frac * 2**31)), 31 - exp
        if mi == 2**31:
            mi, sh = 2**30, sh - 1
        if sh < 1:
            raise QuantizationError(f"rescale factor {r:g} is too large for a fixed-point "
                                    "multiplier; check the calibration data")
        if sh > MAX_SHIFT:  # tiny factor: drop precision bits rather than overflow the shift
            mi, sh = (mi + (1 << (sh - MAX_SHIFT - 1))) >> (sh - MAX_SHIFT), MAX_SHIFT
        m[idx], shift[idx] = mi, sh
    return m.astype(np.int32), shift.astype(np.int8)


def scale_for(max_abs: float) -> float:
    """Scale (real value of one integer step) that maps ``max_abs`` to TARGET."""
    return (float(max_abs) if max_abs > 0 and math.isfinite(max_abs) else 1.0) / TARGET
