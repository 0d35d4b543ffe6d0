"""IMU samples → activity: an L2MU classifies the stream one sample at a time.

Subscribes ``imu`` (sensor_msgs/Imu, sensor-data QoS); every ``hop`` samples publishes
``activity`` (edgesnn_msgs/Activity: class name and softmax confidence), stamped with
the header of the IMU message that completed the decision. A sample with NaN or Inf
is skipped with a warning (once per run of such samples); the node keeps running.

Parameters:
  model (string)               L2MU model file (default: the shipped synthetic-IMU model)
  backend (string)             numpy-int
  hop (int)                    samples per decision (default: the model's window length,
                               metadata "window", else 40)
  reset_each_decision (bool)   true: each decision classifies exactly its own ``hop``
                               samples from a fresh state, as the model was trained
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from edgesnn.classify import StreamingClassifier
from edgesnn.errors import InputError
from edgesnn.modelfile import Model, load_model
from edgesnn.models.reference import L2MU_DEMO_MODEL
from edgesnn.ros.msgs import Activity, Header, Imu
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA, Transport
from edgesnn.runtime import Runtime
from edgesnn_ros.common import ConfigurationError, Episodes, flag, integer, run, text

# model channel name → (Imu field, axis); the names of edgesnn.data.har
IMU_FIELDS = {
    "acc_x": ("linear_acceleration", "x"), "acc_y": ("linear_acceleration", "y"),
    "acc_z": ("linear_acceleration", "z"), "gyro_x": ("angular_velocity", "x"),
    "gyro_y": ("angular_velocity", "y"), "gyro_z": ("angular_velocity", "z"),
}
DEFAULT_HOP = 40  # 2 s at 20 Hz: the windows of the synthetic generator and of WISDM


def model_channels(model: Model) -> list[tuple[str, str]]:
    """The Imu (field, axis) feeding each model input, in the model's channel order."""
    names = model.metadata.get("channels", list(IMU_FIELDS))
    unknown = [str(c) for c in names if c not in IMU_FIELDS]
    if unknown:
        raise ConfigurationError(f"model channels {', '.join(unknown)} are not IMU channels; "
                                 f"this node fills {', '.join(IMU_FIELDS)}")
    width = model.graph.nodes[model.graph.inputs()[0]].out_size
    if width != len(names):
        raise ConfigurationError(f"the model takes {width} inputs, its metadata names "
                                 f"{len(names)} channels")
    return [IMU_FIELDS[c] for c in names]


def model_window(model: Model) -> int:
    """Samples per decision the model was made for: its ``window`` metadata, else 40."""
    window = model.metadata.get("window")
    return window if isinstance(window, int) and not isinstance(window, bool) and window > 0 \
        else DEFAULT_HOP


class ImuActivityNode:
    def __init__(self, transport: Transport):
        self.transport = transport
        model = load_model(text(transport, "model", str(L2MU_DEMO_MODEL)))
        backend = text(transport, "backend", "numpy-int")
        self.fields = model_channels(model)
        hop = integer(transport, "hop", model_window(model), minimum=1)
        reset = flag(transport, "reset_each_decision", True)
        self.stream = StreamingClassifier(Runtime(model, backend), hop, reset)
        self.skipped = Episodes(transport, "skipped samples")
        self.publisher = transport.publisher("activity", Activity, DEFAULT)
        transport.subscribe("imu", Imu, self.on_imu, SENSOR_DATA)
        self.summary = (f"{model.metadata.get('name', 'model')} on {backend}: a decision "
                        f"every {hop} IMU samples")

    def on_imu(self, msg: Imu) -> None:
        sample = np.array([getattr(getattr(msg, f), axis) for f, axis in self.fields], np.float64)
        if not np.isfinite(sample).all():
            self.skipped.problem("warn", f"skipping IMU samples with NaN or Inf (first: {sample})")
            return
        try:
            decision = self.stream.push(sample.astype(np.float32))
        except InputError as exc:  # e.g. beyond the range the integer backend represents
            self.skipped.problem("warn", f"skipping IMU samples the model cannot take: {exc}")
            return
        self.skipped.ok("IMU samples usable again")
        if decision is not None:
            self.publisher.publish(Activity(
                header=Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id),
                label=decision.name if decision.name is not None else str(decision.label),
                confidence=decision.confidence))


def main(argv: Sequence[str] | None = None) -> int:
    return run(ImuActivityNode, "imu_activity", argv)


if __name__ == "__main__":
    sys.exit(main())
