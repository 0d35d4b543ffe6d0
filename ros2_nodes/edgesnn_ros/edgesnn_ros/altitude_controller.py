"""Range + set-point → motor command, through the safety wrapper.

Subscribes ``range`` (sensor_msgs/Range, sensor-data QoS) and ``setpoint``
(std_msgs/Float64, metres, reliable); a timer at ``rate_hz`` runs the controller
through ``SafeController`` and publishes ``command`` (std_msgs/Float64) every tick.
When the safety wrapper falls back (no reading yet, a stale, non-finite or
out-of-range reading, a non-finite set-point, a failing controller), the tick also
publishes ``diagnostics`` (diagnostic_msgs/DiagnosticArray, one status: WARN before the
first reading, ERROR after, message = the reason) and the node logs the episode once;
the first good tick after it publishes one OK status, so monitors clear the fault.

A reading's age is measured from when it arrived, on this node's clock: sensor
stamps from another machine's clock would need synchronised clocks to be compared.

Parameters:
  controller (string)   snn (the shipped SNN PD + SNN I), snn-pd, pid, pd, or model
                        files joined by '+' (pd.esnn+i.esnn)
  backend (string)      numpy-float (in the integer backend only the PD keeps its
                        closed-loop numbers)
  rate_hz (double)      10.0: the period the controllers were made for
  timeout_s (double)    0.5: a reading older than this is stale
  fallback (double)     0.0: the command when the wrapper falls back (motors off)
  setpoint (double)     0.5: metres, until a message on ``setpoint`` (the first level of
                        the schedule the controllers were evolved on: a first step
                        straight to 1.0 m overshoots by 64 cm with the shipped SNN pair)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from edgesnn.controllers.pid import PID
from edgesnn.controllers.safety import SafeController, SafetyConfig
from edgesnn.controllers.snn_controller import load_controller
from edgesnn.ros.msgs import (DiagnosticArray, DiagnosticStatus, Float64, Header, KeyValue, Range,
                              stamp)
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA, Transport
from edgesnn_ros.common import ConfigurationError, Episodes, number, run, text


def controller_period(controller) -> float | None:
    """The loop period [s] a controller was designed for (None: not recorded)."""
    if isinstance(controller, PID):
        return controller.gains.dt
    return controller.runtimes[0].model.graph.dt


class AltitudeControllerNode:
    def __init__(self, transport: Transport):
        self.transport = transport
        name = text(transport, "controller", "snn")
        backend = text(transport, "backend", "numpy-float")
        rate_hz = number(transport, "rate_hz", 10.0, positive=True)
        timeout_s = number(transport, "timeout_s", SafetyConfig.timeout_s, positive=True)
        fallback = number(transport, "fallback", SafetyConfig.fallback)
        self.setpoint = number(transport, "setpoint", 0.5)
        try:
            config = SafetyConfig(timeout_s=timeout_s, fallback=fallback)
        except ValueError:
            raise ConfigurationError(f"parameter fallback must be within ±{SafetyConfig.u_max:g} "
                                     f"(the actuator range), got {fallback:g}") from None
        controller = load_controller(name, backend)
        period = controller_period(controller)
        if period is not None and abs(period * rate_hz - 1) > 1e-6:
            transport.log("warn", f"controller {name} was made for a {1 / period:g} Hz loop; "
                          f"at rate_hz {rate_hz:g} its gains differ from the designed ones")
        self.safe = SafeController(controller, config, clock=transport.now)
        self.measurement: float | None = None
        self.received: float | None = None  # transport.now() when the reading arrived
        self.fallback = Episodes(transport, "fallback ticks")
        self.command = transport.publisher("command", Float64, DEFAULT)
        self.diagnostics = transport.publisher("diagnostics", DiagnosticArray, DEFAULT)
        transport.subscribe("range", Range, self.on_range, SENSOR_DATA)
        transport.subscribe("setpoint", Float64, self.on_setpoint, DEFAULT)
        transport.timer(1.0 / rate_hz, self.on_tick)
        self.summary = (f"controller {name} ({backend}) at {rate_hz:g} Hz, set-point "
                        f"{self.setpoint:g} m")

    def on_range(self, msg: Range) -> None:
        # a bad reading is kept too: the next tick must fall back, not fly on the last good one
        self.measurement = float(msg.range)
        self.received = self.transport.now()

    def on_setpoint(self, msg: Float64) -> None:
        # publishers may repeat the set-point (so late joiners get it): log changes only
        if float(msg.data) != self.setpoint:
            self.transport.log("info", f"set-point {float(msg.data):g} m")
        self.setpoint = float(msg.data)

    def on_tick(self) -> None:
        cmd = self.safe(self.measurement, self.setpoint, self.received)
        self.command.publish(Float64(data=cmd.value))
        if cmd.ok:
            if self.fallback.count:
                self._diagnose(DiagnosticStatus.OK, "controller in command", cmd.value)
            self.fallback.ok("controller in command again")
            return
        level = DiagnosticStatus.WARN if self.measurement is None else DiagnosticStatus.ERROR
        self.fallback.problem("warn" if level == DiagnosticStatus.WARN else "error",
                              f"fallback command {cmd.value:g}: {cmd.reason}")
        self._diagnose(level, cmd.reason, cmd.value)

    def _diagnose(self, level: int, message: str, command: float) -> None:
        values = {"command": command, "setpoint": self.setpoint, "range": self.measurement,
                  "fallback_ticks": self.fallback.count}
        self.diagnostics.publish(DiagnosticArray(
            header=Header(stamp=stamp(self.transport.now())),
            status=[DiagnosticStatus(level=level, name=f"{self.transport.name}: altitude safety",
                                     message=message,
                                     values=[KeyValue(key=k, value=str(v))
                                             for k, v in values.items()])]))


def main(argv: Sequence[str] | None = None) -> int:
    return run(AltitudeControllerNode, "altitude_controller", argv)


if __name__ == "__main__":
    sys.exit(main())
