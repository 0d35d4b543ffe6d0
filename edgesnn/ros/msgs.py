"""ROS 2 message types as Cyclone DDS IDL structs, wire-compatible with rmw_cyclonedds.

rmw_cyclonedds maps a ROS type ``pkg/msg/Type`` to the DDS type name
``pkg::msg::dds_::Type_`` and serializes it as XCDR1 with final extensibility, so a
struct with that type name and the .msg fields in the same order and widths is the
same type on the wire (tests/test_ros_wire.py compares the bytes with the rosbags
serializer). Field names are those of the .msg files because the rclpy adapter and
the bag reader convert by name. Unbounded arrays are ``types.sequence``, fixed arrays
``types.array``; constants of a .msg are plain class attributes (not fields).
"""

# No `from __future__ import annotations`: cyclonedds resolves string annotations such as
# "types.uint8" against the stdlib module `types` and fails.
from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct, types


# builtin_interfaces


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: types.int32 = 0
    nanosec: types.uint32 = 0


def stamp(t: float) -> Time:
    """A header stamp from seconds since the epoch (``Transport.now()``)."""
    sec, nanosec = divmod(round(t * 1e9), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


# std_msgs


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class Float64(IdlStruct, typename="std_msgs::msg::dds_::Float64_"):
    data: types.float64 = 0.0


@dataclass
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str = ""


# geometry_msgs


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: types.float64 = 0.0
    y: types.float64 = 0.0
    z: types.float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: types.float64 = 0.0
    y: types.float64 = 0.0
    z: types.float64 = 0.0
    w: types.float64 = 1.0  # the .msg default: the identity rotation


# sensor_msgs


def _zeros9() -> list[float]:
    return [0.0] * 9


@dataclass
class Imu(IdlStruct, typename="sensor_msgs::msg::dds_::Imu_"):
    header: Header = field(default_factory=Header)
    orientation: Quaternion = field(default_factory=Quaternion)
    orientation_covariance: types.array[types.float64, 9] = field(default_factory=_zeros9)
    angular_velocity: Vector3 = field(default_factory=Vector3)
    angular_velocity_covariance: types.array[types.float64, 9] = field(default_factory=_zeros9)
    linear_acceleration: Vector3 = field(default_factory=Vector3)
    linear_acceleration_covariance: types.array[types.float64, 9] = field(default_factory=_zeros9)


@dataclass
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header = field(default_factory=Header)
    height: types.uint32 = 0
    width: types.uint32 = 0
    encoding: str = ""
    is_bigendian: types.uint8 = 0
    step: types.uint32 = 0
    # a list of ints when received; publishing also takes bytes (a numpy array: .tobytes())
    data: types.sequence[types.uint8] = field(default_factory=list)


@dataclass
class Range(IdlStruct, typename="sensor_msgs::msg::dds_::Range_"):
    ULTRASOUND = 0
    INFRARED = 1

    header: Header = field(default_factory=Header)
    radiation_type: types.uint8 = 0
    field_of_view: types.float32 = 0.0
    min_range: types.float32 = 0.0
    max_range: types.float32 = 0.0
    range: types.float32 = 0.0
    variance: types.float32 = 0.0


# diagnostic_msgs


@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    key: str = ""
    value: str = ""


@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3

    level: types.byte = 0  # .msg `byte`: an int here, a 1-byte bytes in rclpy
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: types.sequence[KeyValue] = field(default_factory=list)


@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    header: Header = field(default_factory=Header)
    status: types.sequence[DiagnosticStatus] = field(default_factory=list)


# edgesnn_msgs (ros2_nodes/edgesnn_msgs/msg/*.msg)


@dataclass
class Activity(IdlStruct, typename="edgesnn_msgs::msg::dds_::Activity_"):
    header: Header = field(default_factory=Header)
    label: str = ""
    confidence: types.float32 = 0.0


@dataclass
class Place(IdlStruct, typename="edgesnn_msgs::msg::dds_::Place_"):
    header: Header = field(default_factory=Header)
    place: types.int32 = 0
    score: types.float32 = 0.0


# The .msg text of the custom package, for tools that need the definition without a
# ROS install (the bag module registers it with rosbags). It must equal the files in
# ros2_nodes/edgesnn_msgs/msg/, which colcon builds; a test checks that.
EDGESNN_MSG_DEFINITIONS = {
    "edgesnn_msgs/msg/Activity": (
        "# An activity recognised from an IMU window\n"
        "std_msgs/Header header\n"
        "string label\n"
        "float32 confidence\n"
    ),
    "edgesnn_msgs/msg/Place": (
        "# A place recognised from a camera image: the index of the matched reference place\n"
        "std_msgs/Header header\n"
        "int32 place\n"
        "float32 score\n"
    ),
}

MESSAGE_TYPES: tuple[type[IdlStruct], ...] = (
    Time, Header, Float64, String, Vector3, Quaternion, Imu, Image, Range,
    KeyValue, DiagnosticStatus, DiagnosticArray, Activity, Place,
)


def dds_to_ros_type_name(typename: str) -> str:
    """``sensor_msgs::msg::dds_::Imu_`` → ``sensor_msgs/msg/Imu`` (the rosbag2 and rclpy
    name); a DDS type name not of that form is returned as it is."""
    parts = typename.split("::")
    if len(parts) == 4 and parts[2] == "dds_" and parts[3].endswith("_"):
        return f"{parts[0]}/{parts[1]}/{parts[3][:-1]}"
    return typename


def ros_type_name(msg_type: type[IdlStruct]) -> str:
    return dds_to_ros_type_name(msg_type.__idl_typename__)


BY_ROS_NAME: dict[str, type[IdlStruct]] = {ros_type_name(t): t for t in MESSAGE_TYPES}
