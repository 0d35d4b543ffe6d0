"""A model running on a device, driven from the host (hardware in the loop).

The host does what the device does not: float input → int16 (the model's input
scale), int32 output → float. The device must run exactly this model: its HELLO model
id is checked against the id of the C generated for the model here.
"""

from __future__ import annotations

import numpy as np

from edgesnn.compile import Program
from edgesnn.errors import BackendError
from edgesnn.export.c import fixed_program, generate
from edgesnn.modelfile import Model
from edgesnn.serial.host import Device


class DeviceModel:
    """Step ``model`` on ``device``: ``step(x)`` (inputs,) float → (outputs,) float."""

    def __init__(self, device: Device, model: Model):
        self.device = device
        self.program: Program = fixed_program(model)
        info = device.hello()
        want = generate(model).model_id
        if info.model_id != want:
            raise BackendError(
                f"the device runs {info.model_name!r} (model id 0x{info.model_id:08x}), not "
                f"{model.metadata.get('name', 'this model')!r} (0x{want:08x}); build its firmware "
                "from this model (edgesnn export MODEL --target c, then make -C firmware ...)")
        self.reset()

    def reset(self) -> None:
        self.device.reset()

    def step(self, x) -> np.ndarray:
        x = self.program.check_input(x, time_axis=False)
        y = self.device.step(self.program.quantize_input(x.reshape(1, -1))[0])
        return self.program.dequantize_output(y)

    def run(self, xs) -> np.ndarray:
        """(T, inputs) float → (T, outputs) float, continuing from the device's state."""
        xs = self.program.check_input(xs, time_axis=True)
        if xs.ndim != 2:
            raise BackendError("a device runs one sequence at a time: (T, features)")
        return self.program.dequantize_output(self.device.run(self.program.quantize_input(xs)))

    def __call__(self, error: np.ndarray) -> np.ndarray:
        """As a controller in a closed loop: one error (batch of 1) → one command."""
        return self.step(np.asarray(error, np.float32).reshape(-1)).astype(np.float64)
