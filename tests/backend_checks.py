"""Step-by-step comparisons of a backend with the numpy reference, shared by the
backend and export tests (c, onnx, tflite)."""

import numpy as np

from edgesnn.backends import get_backend
from edgesnn.controllers.snn_controller import SHIPPED_I, SHIPPED_PD
from edgesnn.models.reference import L2MU_DEMO_MODEL, REFERENCE_MODEL, VPR_DEMO_MODEL

# every shipped model: the three families and the reference network
SHIPPED = {"reference-lif": REFERENCE_MODEL, "l2mu": L2MU_DEMO_MODEL, "controller-pd": SHIPPED_PD,
           "controller-i": SHIPPED_I, "vpr-ensemble": VPR_DEMO_MODEL}


def assert_close(name, a, b, t):
    assert a.dtype == b.dtype and a.shape == b.shape, name
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(a).max())),
                               err_msg=f"{name}, step {t}")


def compare_float(model, backend: str, x: np.ndarray) -> np.ndarray:
    """Step numpy-float and ``backend`` through float inputs (batch, T, n): the output
    and every state buffer within 1e-5 relative to the buffer's magnitude."""
    ref, other = get_backend("numpy-float")(model), get_backend(backend)(model)
    s_ref, s_other = ref.init_state(x.shape[0]), other.init_state(x.shape[0])
    ys = []
    for t in range(x.shape[1]):
        y_ref, s_ref = ref.step(s_ref, x[:, t])
        y_other, s_other = other.step(s_other, x[:, t])
        assert_close("output", y_ref, y_other, t)
        assert s_other.keys() == s_ref.keys()
        for name in s_ref:
            assert_close(name, s_ref[name], s_other[name], t)
        ys.append(y_ref)
    return np.stack(ys, 1)


def compare_int(model, backend: str, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Step numpy-int and ``backend`` through int16 inputs (batch, T, n): the output and
    every state buffer equal, with equal dtypes, after every step."""
    ref, other = get_backend("numpy-int")(model), get_backend(backend)(model)
    s_ref, s_other = ref.init_state(x.shape[0]), other.init_state(x.shape[0])
    ys = []
    for t in range(x.shape[1]):
        y_ref, s_ref = ref.step_int(s_ref, x[:, t])
        y_other, s_other = other.step_int(s_other, x[:, t])
        assert y_other.dtype == y_ref.dtype
        np.testing.assert_array_equal(y_other, y_ref, err_msg=f"output, step {t}")
        assert s_other.keys() == s_ref.keys()
        for name in s_ref:
            assert s_other[name].dtype == s_ref[name].dtype, name
            np.testing.assert_array_equal(s_other[name], s_ref[name], err_msg=f"{name}, step {t}")
        ys.append(y_ref)
    return np.stack(ys, 1), s_ref


def float_inputs(n: int, steps: int = 50, seed: int = 1) -> np.ndarray:
    """Working-range inputs, and one sequence large enough to drive states far out."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (2, steps, n)),
                           rng.normal(0, 1e4, (1, steps, n))]).astype(np.float32)


def int_inputs(n: int, steps: int = 50, seed: int = 1) -> np.ndarray:
    """Moderate int16 inputs, and full-range ones that drive states onto the int32 rails."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(-3000, 3000, (2, steps, n)),
                           rng.integers(-32768, 32768, (1, steps, n))]).astype(np.int16)


def input_size(model) -> int:
    return model.graph.nodes[model.graph.inputs()[0]].size


def check_run_continues(model, backend: str, steps: int = 30) -> None:
    """``run`` over a sequence in two halves, continuing from the returned state, equals
    numpy-int (outputs and final state); the float step API (quantize in, dequantize
    out) agrees on one step."""
    ref, other = get_backend("numpy-int")(model), get_backend(backend)(model)
    xs = np.random.default_rng(3).normal(0, 1, (2, steps, ref.input_size)).astype(np.float32)
    half = steps // 2
    s_ref, s_other = ref.init_state(2), other.init_state(2)
    for part in (xs[:, :half], xs[:, half:]):
        y_ref, s_ref = ref.run(s_ref, part)
        y_other, s_other = other.run(s_other, part)
        np.testing.assert_array_equal(y_other, y_ref)
    for name in s_ref:
        np.testing.assert_array_equal(s_other[name], s_ref[name])
    y1, _ = other.step(other.init_state(), xs[0, 0])
    np.testing.assert_array_equal(y1, ref.step(ref.init_state(), xs[0, 0])[0])


def rail_inputs(model, rng: np.random.Generator, working: int, steps: int) -> np.ndarray:
    """int16 inputs (working + 1, steps, n): ``working`` sequences of the model's working
    range (3× its calibration spread, quantized), then one jumping between the int16
    rails, which drives every state into saturation."""
    prog = get_backend("numpy-int")(model)
    x = prog.quantize_input(3 * rng.normal(0, 1, (working, steps, prog.input_size)).astype(np.float32))
    extreme = rng.choice(np.array([-32768, 32767], np.int16), (1, steps, prog.input_size))
    return np.concatenate([x, extreme])
