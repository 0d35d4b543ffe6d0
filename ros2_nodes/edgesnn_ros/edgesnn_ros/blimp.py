"""A simulated blimp: the physical model fitted to the flight logs, flown by ``command``.

Subscribes ``command`` (std_msgs/Float64, reliable); a timer at ``rate_hz`` steps the
blimp with the last command (held between messages; none for more than
``command_timeout_s``: motors off) and publishes ``range`` (sensor_msgs/Range,
sensor-data QoS, an infrared time-of-flight sensor pointing down, like the TFmini-class
LiDAR the safety limits assume) and ``altitude`` (std_msgs/Float64, the true altitude,
for monitoring). The blimp starts on the floor (altitude 0) and cannot sink below it.

Parameters:
  rate_hz (double)             10.0: simulation and sensor rate
  command_timeout_s (double)   0.5
  seed (int)                   0: the range sensor's noise
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np

from edgesnn.controllers.plants import FITTED, PhysicalBlimp
from edgesnn.controllers.safety import SafetyConfig
from edgesnn.ros.msgs import Float64, Header, Range, stamp
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA, Transport
from edgesnn_ros.common import Episodes, integer, number, run

FIELD_OF_VIEW = 0.04  # rad: 2.3°, a TFmini-class LiDAR
FRAME_ID = "range_sensor"


class FlooredBlimp(PhysicalBlimp):
    """PhysicalBlimp over a floor at altitude 0. The plant models no ground (it flies
    relative altitudes), but a node running for minutes with its motors off would sink
    without end, and a controller cannot take off from below its sensor's range."""

    def step(self, u: np.ndarray | float) -> np.ndarray:
        measured = super().step(u)
        below = self._z < 0
        if not below.any():
            return measured
        # resting on the floor: no altitude below it, no downward speed into it
        self._z = np.where(below, 0.0, self._z)
        self._w = np.where(below, np.maximum(self._w, 0.0), self._w)
        return self._measure()


class BlimpNode:
    def __init__(self, transport: Transport):
        self.transport = transport
        rate_hz = number(transport, "rate_hz", 10.0, positive=True)
        self.timeout_s = number(transport, "command_timeout_s", 0.5, positive=True)
        seed = integer(transport, "seed", 0, minimum=0)
        self.blimp = FlooredBlimp(FITTED, batch=1, dt=1.0 / rate_hz)
        self.blimp.reset(seed)
        self.limits = SafetyConfig()
        self.u = 0.0
        self.received: float | None = None  # transport.now() of the last command
        self.idle = Episodes(transport, "ticks with motors off")
        self.rejected = Episodes(transport, "rejected commands")
        self.range_publisher = transport.publisher("range", Range, SENSOR_DATA)
        self.altitude_publisher = transport.publisher("altitude", Float64, DEFAULT)
        transport.subscribe("command", Float64, self.on_command, DEFAULT)
        transport.timer(1.0 / rate_hz, self.on_tick)
        self.summary = (f"simulated blimp at {rate_hz:g} Hz, motors off after "
                        f"{self.timeout_s:g} s without a command")

    def on_command(self, msg: Float64) -> None:
        u = float(msg.data)
        if not math.isfinite(u):
            self.rejected.problem("error", f"ignoring non-finite commands ({u})")
            return
        self.rejected.ok("commands finite again")
        self.u, self.received = u, self.transport.now()

    def on_tick(self) -> None:
        now = self.transport.now()
        if self.received is not None and now - self.received <= self.timeout_s:
            self.idle.ok("commands received")
            u = self.u
        else:
            self.idle.problem("warn", "no command yet: motors off" if self.received is None else
                              f"no command for {self.timeout_s:g} s: motors off")
            u = 0.0
        measured = float(self.blimp.step(u)[0])
        lim = self.limits
        # Readings below the sensor's minimum are noise on the floor and read as the
        # minimum; beyond its maximum the sensor sees nothing, which REP 117 writes +Inf.
        reading = math.inf if measured > lim.max_measurement else max(measured, lim.min_measurement)
        self.range_publisher.publish(Range(
            header=Header(stamp=stamp(now), frame_id=FRAME_ID), radiation_type=Range.INFRARED,
            field_of_view=FIELD_OF_VIEW, min_range=lim.min_measurement,
            max_range=lim.max_measurement, range=reading, variance=FITTED.noise_std ** 2))
        self.altitude_publisher.publish(Float64(data=float(self.blimp.altitude[0])))


def main(argv: Sequence[str] | None = None) -> int:
    return run(BlimpNode, "blimp", argv)


if __name__ == "__main__":
    sys.exit(main())
