"""ROS 2 wire format without ROS: every message type of edgesnn.ros.msgs serializes
(Cyclone DDS, as the DDS transport sends it) to exactly the bytes of the rosbags ROS 2
serializer, the reference for rmw's CDR; rosbag2 files round-trip."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest


from edgesnn.ros import msgs  # noqa: E402
from edgesnn.ros.bag import from_rosbags, read_bag, to_rosbags, typestore, write_bag  # noqa: E402
from edgesnn.ros.msgs import (  # noqa: E402
    Activity, DiagnosticArray, DiagnosticStatus, Float64, Header, Image, Imu, KeyValue, Place,
    Quaternion, Range, String, Time, Vector3, stamp)

MSG_DIR = Path(__file__).resolve().parents[1] / "ros2_nodes" / "edgesnn_msgs" / "msg"

# CDR encapsulation header: little-endian plain CDR (XCDR1), options 0
CDR_LE = b"\x00\x01\x00\x00"


def header(frame_id: str, t: float = 1_700_000_000.123456) -> Header:
    return Header(stamp=stamp(t), frame_id=frame_id)


# Non-trivial values: strings of odd lengths (so the next field needs padding), nested
# headers, fixed arrays, sequences of primitives and of structs; float32 fields hold
# values float32 represents exactly, so decoded messages compare equal.
SAMPLES = {
    Time: Time(sec=-3, nanosec=999_999_999),
    Header: header("imu"),
    Float64: Float64(data=-2.5e-3),
    String: String(data="hello, world!"),
    Vector3: Vector3(x=1.0, y=-2.0, z=3.5),
    Quaternion: Quaternion(x=0.1, y=-0.2, z=0.3, w=0.9),
    Imu: Imu(header=header("imu_link"), orientation=Quaternion(0.0, 0.0, 0.6, 0.8),
             orientation_covariance=[float(i) for i in range(9)],
             angular_velocity=Vector3(0.01, -0.02, 0.03),
             angular_velocity_covariance=[0.5 * i for i in range(9)],
             linear_acceleration=Vector3(0.1, 0.2, 9.81),
             linear_acceleration_covariance=[-1.0] * 9),
    Image: Image(header=header("cam"), height=5, width=7, encoding="mono8", is_bigendian=0,
                 step=7, data=[(i * 37) % 256 for i in range(35)]),
    Range: Range(header=header("sonar"), radiation_type=Range.INFRARED, field_of_view=0.25,
                 min_range=0.03125, max_range=4.5, range=1.75, variance=0.0078125),
    KeyValue: KeyValue(key="rate_hz", value="12.5"),
    DiagnosticStatus: DiagnosticStatus(
        level=DiagnosticStatus.WARN, name="imu_activity", message="late by 3 ms",
        hardware_id="rpi5", values=[KeyValue("lag", "3"), KeyValue("model", "l2mu")]),
    DiagnosticArray: DiagnosticArray(header=header("diag"), status=[
        DiagnosticStatus(level=DiagnosticStatus.OK, name="a", message="", hardware_id="x",
                         values=[]),
        DiagnosticStatus(level=DiagnosticStatus.ERROR, name="bc", message="def",
                         hardware_id="", values=[KeyValue("k", "vvv")])]),
    Activity: Activity(header=header("wrist"), label="walking", confidence=0.875),
    Place: Place(header=header("camera"), place=17, score=0.625),
}


def test_every_message_type_has_a_sample():
    assert set(SAMPLES) == set(msgs.MESSAGE_TYPES)


@pytest.mark.parametrize("msg_type", msgs.MESSAGE_TYPES, ids=lambda t: t.__name__)
def test_cdr_bytes_equal_rosbags(msg_type):
    msg = SAMPLES[msg_type]
    ours = msg.serialize()
    name = msgs.ros_type_name(msg_type)
    theirs = bytes(typestore().serialize_cdr(to_rosbags(msg), name))
    # cyclonedds emits the 4-byte encapsulation header as rosbags does: compare it all
    assert ours[:4] == CDR_LE
    assert ours == theirs
    # and each side decodes the other's bytes to the same message
    assert msg_type.deserialize(theirs) == msg
    assert from_rosbags(typestore().deserialize_cdr(ours, name)) == msg


def test_rosbags_message_built_by_hand():
    """The converter is not what makes the bytes equal: an Imu built field by field
    from rosbags' own classes serializes to the same bytes."""
    store = typestore()
    T = store.types
    msg = SAMPLES[Imu]
    ref = T["sensor_msgs/msg/Imu"](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=msg.header.stamp.sec,
                                                   nanosec=msg.header.stamp.nanosec),
            frame_id="imu_link"),
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.6, w=0.8),
        orientation_covariance=np.arange(9, dtype=np.float64),
        angular_velocity=T["geometry_msgs/msg/Vector3"](x=0.01, y=-0.02, z=0.03),
        angular_velocity_covariance=0.5 * np.arange(9, dtype=np.float64),
        linear_acceleration=T["geometry_msgs/msg/Vector3"](x=0.1, y=0.2, z=9.81),
        linear_acceleration_covariance=-np.ones(9))
    assert msg.serialize() == bytes(store.serialize_cdr(ref, "sensor_msgs/msg/Imu"))


def test_type_names_follow_rmw_cyclonedds():
    assert Imu.__idl_typename__ == "sensor_msgs::msg::dds_::Imu_"
    assert Activity.__idl_typename__ == "edgesnn_msgs::msg::dds_::Activity_"
    assert msgs.ros_type_name(DiagnosticArray) == "diagnostic_msgs/msg/DiagnosticArray"
    assert msgs.dds_to_ros_type_name("NotRos") == "NotRos"


def test_defaults_and_stamp():
    assert Float64(data=1.0).data == 1.0
    assert Header() == Header(stamp=Time(0, 0), frame_id="")
    assert Quaternion().w == 1.0 and Imu().orientation_covariance == [0.0] * 9
    assert stamp(1.5) == Time(sec=1, nanosec=500_000_000)
    assert stamp(-0.25) == Time(sec=-1, nanosec=750_000_000)
    assert stamp(2.9999999999) == Time(sec=3, nanosec=0)  # rounding carries into sec


def test_custom_msg_files_match_the_python_definitions():
    for name, text in msgs.EDGESNN_MSG_DEFINITIONS.items():
        assert (MSG_DIR / (name.split("/")[-1] + ".msg")).read_text() == text
    assert sorted(p.name for p in MSG_DIR.glob("*.msg")) == ["Activity.msg", "Place.msg"]
    cmake = (MSG_DIR.parent / "CMakeLists.txt").read_text()
    assert '"msg/Activity.msg"' in cmake and '"msg/Place.msg"' in cmake


def test_bag_round_trip(tmp_path):
    messages = [(f"/topic_{i % 3}" if i % 5 else "/imu", msg, 1_000_000_000 + 10_000_000 * i)
                for i, msg in enumerate(SAMPLES.values())]
    write_bag(tmp_path / "bag", messages)
    assert list(read_bag(tmp_path / "bag")) == messages
    # the MCAP file alone reads too (ros2 bag and other tools open either)
    (mcap,) = (tmp_path / "bag").glob("*.mcap")
    assert list(read_bag(mcap)) == messages
    assert "storage_identifier: mcap" in (tmp_path / "bag" / "metadata.yaml").read_text()


def test_bag_relative_topic_is_stored_absolute(tmp_path):
    write_bag(tmp_path / "bag", [("imu", SAMPLES[Imu], 5)])
    assert [t for t, _, _ in read_bag(tmp_path / "bag")] == ["/imu"]


def test_bag_skips_unknown_types_with_a_warning(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        odd = w.add_connection("/count", "std_msgs/msg/Int32", typestore=store)
        known = w.add_connection("/f", "std_msgs/msg/Float64", typestore=store)
        w.write(odd, 1, store.serialize_cdr(store.types["std_msgs/msg/Int32"](data=3),
                                            "std_msgs/msg/Int32"))
        w.write(known, 2, store.serialize_cdr(to_rosbags(Float64(4.0)), "std_msgs/msg/Float64"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(read_bag(tmp_path / "bag")) == [("/f", Float64(4.0), 2)]
    assert any("/count (std_msgs/msg/Int32)" in str(w.message) for w in caught)


def test_rclpy_adapter_imports_without_rclpy():
    """The adapter cannot run here (no ROS); it imports, and says what is missing."""
    from edgesnn.errors import MissingExtraError
    from edgesnn.ros import rclpy_adapter

    if importlib.util.find_spec("rclpy") is None:
        with pytest.raises(MissingExtraError, match="ROS 2 install"):
            rclpy_adapter.RclpyTransport("n")
