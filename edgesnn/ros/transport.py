"""What a node needs from ROS, as an interface, so that node logic is the same on a
ROS 2 system (rclpy) and on a bare board (the built-in Cyclone DDS transport).

A node gets a Transport and uses only this:

    pub = t.publisher("altitude/command", Float64, DEFAULT)
    t.subscribe("imu", Imu, self.on_imu, SENSOR_DATA)
    t.timer(0.1, self.on_tick)
    pub.publish(Float64(data=0.3))
    t.now(); t.log("warn", "..."); t.param("rate_hz", 10.0)

and its owner calls ``spin()``. Topic names are ROS names (no ``rt/`` prefix; the DDS
transport adds it), relative names are resolved under the node's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Protocol


class Reliability(Enum):
    BEST_EFFORT = "best_effort"
    RELIABLE = "reliable"


@dataclass(frozen=True)
class QoS:
    """A ROS 2 QoS profile (durability volatile throughout)."""

    reliability: Reliability
    depth: int  # history: keep last ``depth``


# rclpy's qos_profile_sensor_data and its default profile
SENSOR_DATA = QoS(Reliability.BEST_EFFORT, 5)
DEFAULT = QoS(Reliability.RELIABLE, 10)


class Publisher(Protocol):
    def publish(self, msg: Any) -> None: ...


class Transport(Protocol):
    name: str       # node name
    namespace: str  # "/" or "/robot1"

    def publisher(self, topic: str, msg_type: type, qos: QoS = DEFAULT) -> Publisher: ...
    def subscribe(self, topic: str, msg_type: type, callback: Callable[[Any], None],
                  qos: QoS = DEFAULT) -> None: ...
    def timer(self, period_s: float, callback: Callable[[], None]) -> None: ...
    def now(self) -> float: ...  # seconds since the epoch (header stamps)
    def log(self, level: str, text: str) -> None: ...  # "debug" | "info" | "warn" | "error"
    def param(self, name: str, default: Any) -> Any: ...  # declared ROS parameter
    def unknown_params(self) -> list[str]: ...  # given but never declared: refuse to start
    def spin(self, until: Callable[[], bool] | None = None,
             timeout_s: float | None = None) -> None: ...
    def close(self) -> None: ...
