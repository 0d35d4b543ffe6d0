"""The Transport of transport.py over rclpy, to run the same node logic on a ROS 2
system (``ros2 run`` / ``ros2 launch``). It takes what DdsTransport takes (the node's
name, namespace, parameters, remappings, log level: the nodes parse the command line
themselves) and hands them to rclpy.

Messages are converted by field name, recursively, between the dataclasses of msgs.py
and the generated rclpy classes (``sensor_msgs.msg.Imu`` …; ``edgesnn_msgs`` from the
colcon-built package in ros2_nodes/edgesnn_msgs). Deliberately thin.

NOT EXERCISED BY THE TESTS: rclpy comes with a ROS 2 install and is not pip-installable,
so this module has only been imported, never run, in this repository's CI. The DDS
transport (dds.py) is the tested path; both sit behind the same interface.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from edgesnn.errors import MissingExtraError
from edgesnn.ros.msgs import BY_ROS_NAME, IdlStruct, ros_type_name
from edgesnn.ros.transport import DEFAULT, QoS, Reliability


def _rclpy():
    try:
        return importlib.import_module("rclpy")
    except ImportError as exc:
        raise MissingExtraError("rclpy is not importable: it comes with a ROS 2 install "
                                "(source /opt/ros/<distro>/setup.bash)") from exc


def rclpy_class(msg_type: type[IdlStruct]) -> type:
    """The rclpy class of a msgs.py dataclass: Imu → sensor_msgs.msg.Imu."""
    pkg, _msg, name = ros_type_name(msg_type).split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def to_rclpy(msg: IdlStruct) -> Any:
    cls = rclpy_class(type(msg))
    kinds = cls.get_fields_and_field_types()  # {"level": "octet", ...}
    values = {}
    for field in msg.__dataclass_fields__:
        value = getattr(msg, field)
        if isinstance(value, IdlStruct):
            value = to_rclpy(value)
        elif isinstance(value, list) and value and isinstance(value[0], IdlStruct):
            value = [to_rclpy(v) for v in value]
        elif kinds[field] == "octet":  # .msg `byte`: an int here, bytes of 1 in rclpy
            value = bytes([value])
        values[field] = value
    return cls(**values)


def from_rclpy(obj: Any) -> IdlStruct:
    pkg = type(obj).__module__.split(".")[0]
    cls = BY_ROS_NAME[f"{pkg}/msg/{type(obj).__name__}"]
    return cls(**{f: _from_rclpy_value(getattr(obj, f)) for f in cls.__dataclass_fields__})


def _from_rclpy_value(value: Any) -> Any:
    if hasattr(value, "get_fields_and_field_types"):
        return from_rclpy(value)
    if isinstance(value, bytes) and len(value) == 1:  # an octet field
        return value[0]
    if hasattr(value, "tolist"):  # numpy arrays (fixed arrays), array.array (sequences)
        return value.tolist()
    if isinstance(value, list):
        return [_from_rclpy_value(v) for v in value]
    return value


class _Publisher:
    def __init__(self, publisher: Any):
        self._publisher = publisher

    def publish(self, msg: Any) -> None:
        self._publisher.publish(to_rclpy(msg))

    def get_subscription_count(self) -> int:
        return self._publisher.get_subscription_count()


class RclpyTransport:
    """A node on rclpy, constructed as DdsTransport (without a domain: rclpy takes
    ROS_DOMAIN_ID). Parameters are declared with dynamic typing when the node reads
    them, so that a value is returned as given, as DdsTransport does."""

    def __init__(self, name: str, namespace: str = "/", params: Mapping[str, Any] | None = None,
                 remappings: Mapping[str, str] | None = None, log_level: str = "info"):
        rclpy = _rclpy()
        from rclpy.logging import LoggingSeverity
        from rclpy.parameter import Parameter

        self._owns_context = not rclpy.ok()
        if self._owns_context:
            rclpy.init()
        self._rclpy = rclpy
        self._params = dict(params or {})
        remap_args = [a for k, v in (remappings or {}).items() for a in ("-r", f"{k}:={v}")]
        # only what the node parsed applies, not the process's --ros-args a second time
        self._node = rclpy.create_node(
            name, namespace=namespace, use_global_arguments=False,
            parameter_overrides=[Parameter(k, value=v) for k, v in self._params.items()],
            cli_args=["--ros-args", *remap_args] if remap_args else None)
        self._node.get_logger().set_level(
            {"debug": LoggingSeverity.DEBUG, "info": LoggingSeverity.INFO,
             "warn": LoggingSeverity.WARN, "error": LoggingSeverity.ERROR}[log_level])
        self.name = self._node.get_name()
        self.namespace = self._node.get_namespace()
        self._read: set[str] = set()

    def _qos(self, qos: QoS) -> Any:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        return QoSProfile(
            reliability=(ReliabilityPolicy.RELIABLE if qos.reliability is Reliability.RELIABLE
                         else ReliabilityPolicy.BEST_EFFORT),
            history=HistoryPolicy.KEEP_LAST, depth=qos.depth,
            durability=DurabilityPolicy.VOLATILE)

    def _guarded(self, callback: Callable, what: str) -> Callable:
        # as DdsTransport: an exception is logged and spinning goes on (rclpy would stop)
        def call(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as e:  # noqa: BLE001
                self.log("error", f"{what} raised {type(e).__name__}: {e}")
        return call

    def publisher(self, topic: str, msg_type: type, qos: QoS = DEFAULT) -> _Publisher:
        return _Publisher(self._node.create_publisher(rclpy_class(msg_type), topic,
                                                      self._qos(qos)))

    def subscribe(self, topic: str, msg_type: type, callback: Callable[[Any], None],
                  qos: QoS = DEFAULT) -> None:
        guarded = self._guarded(callback, f"callback on {topic}")
        self._node.create_subscription(rclpy_class(msg_type), topic,
                                       lambda m: guarded(from_rclpy(m)), self._qos(qos))

    def timer(self, period_s: float, callback: Callable[[], None]) -> None:
        self._node.create_timer(period_s, self._guarded(callback, "timer"))

    def now(self) -> float:
        return self._node.get_clock().now().nanoseconds / 1e9  # follows use_sim_time

    def log(self, level: str, text: str) -> None:
        logger = self._node.get_logger()
        {"debug": logger.debug, "info": logger.info, "warn": logger.warning,
         "error": logger.error}[level](text)

    def param(self, name: str, default: Any) -> Any:
        from rcl_interfaces.msg import ParameterDescriptor

        self._read.add(name)
        if not self._node.has_parameter(name):
            self._node.declare_parameter(name, default,
                                         ParameterDescriptor(dynamic_typing=True))
        return self._node.get_parameter(name).value

    def unknown_params(self) -> list[str]:
        return sorted(set(self._params) - self._read)

    def spin(self, until: Callable[[], bool] | None = None,
             timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._rclpy.ok() and not (until is not None and until()):
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                return
            self._rclpy.spin_once(self._node, timeout_sec=left)

    def close(self) -> None:
        self._node.destroy_node()
        if self._owns_context:
            self._rclpy.try_shutdown()
