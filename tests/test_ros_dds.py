"""The Cyclone DDS transport between processes: a publisher in a child process (python -c)
and subscribers in the test process, on the loopback interface (edgesnn.ros.dds.loopback
configuration), each test in a DDS domain of its own. Messages arrive intact, names
resolve as in ROS, and bad input (another type on a topic, incompatible QoS, a sample
that does not decode, a callback that raises) is logged while spinning goes on."""

import inspect
import os
import random
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest


from edgesnn.ros.dds import (  # noqa: E402
    DdsTransport, dds_topic_name, loopback, loopback_config, loopback_env, resolve_name)
from edgesnn.ros.msgs import (  # noqa: E402
    Float64, Header, Image, Imu, Quaternion, String, Time, Vector3)
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA  # noqa: E402


# The messages, from an index; the child processes get these functions' source.
def imu_sample(i):
    return Imu(header=Header(Time(1000 + i // 200, (i % 200) * 5_000_000), "imu_link"),
               orientation=Quaternion(0.0, 0.0, 0.01 * i, 1.0),
               orientation_covariance=[i + k / 10 for k in range(9)],
               angular_velocity=Vector3(i, -i, 0.5 * i),
               linear_acceleration=Vector3(0.0, 0.0, 9.81 + i / 1000),
               linear_acceleration_covariance=[float(k) for k in range(9)])


def image_sample():
    return Image(header=Header(Time(5, 6), "camera"), height=48, width=64, encoding="mono8",
                 is_bigendian=0, step=64,
                 data=[(x * 3 + y * 5) % 256 for y in range(48) for x in range(64)])


# Every child starts with this: a node in domain argv[1], and a wait until the test's
# subscriber is there. A writer sees the match first; the sleep gives the reader side
# time to match too, or the first samples would go to a reader that drops them.
PRELUDE = """
import sys, time
from edgesnn.ros.dds import DdsTransport
from edgesnn.ros.msgs import Float64, Header, Image, Imu, Quaternion, String, Time, Vector3
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA

def node(namespace="/"):
    return DdsTransport("pub", namespace, domain_id=int(sys.argv[1]))

def wait_for_subscriber(pub):
    end = time.monotonic() + 10
    while pub.get_subscription_count() < 1:
        assert time.monotonic() < end, "no subscriber"
        time.sleep(0.01)
    time.sleep(0.3)
""" + inspect.getsource(imu_sample) + inspect.getsource(image_sample)


@pytest.fixture
def domain():
    """A DDS domain of this test's own, on loopback (set before any participant of the
    domain exists in this process, so Cyclone reads it)."""
    with loopback():
        yield random.randrange(100, 230)


def start(script: str, domain: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PRELUDE + script, str(domain)],
                            env=loopback_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> str:
    """The child's stderr, after checking it exited cleanly."""
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return err


def test_imu_at_200_hz_for_one_second(domain):
    proc = start("""
t = node("/robot")
pub = t.publisher("imu", Imu, SENSOR_DATA)      # -> rt/robot/imu
wait_for_subscriber(pub)
sent = []
def tick():
    if len(sent) < 200:
        pub.publish(imu_sample(len(sent)))
        sent.append(time.monotonic())
t.timer(0.005, tick)
t.spin(until=lambda: len(sent) == 200)
print(sent[-1] - sent[0])
t.spin(timeout_s=0.3)
""", domain)
    got, arrival = [], []
    node = DdsTransport("sub", "/robot", domain_id=domain)
    node.subscribe("imu", Imu, lambda m: (got.append(m), arrival.append(time.monotonic())),
                   SENSOR_DATA)
    node.spin(until=lambda: len(got) == 200 or proc.poll() is not None, timeout_s=20)
    node.spin(timeout_s=0.1)  # nothing more may come
    node.close()
    sent_over = float(proc.communicate(timeout=20)[0])
    assert proc.returncode == 0
    assert got == [imu_sample(i) for i in range(200)]  # all, in order, field for field
    assert 0.9 < sent_over < 1.3  # the child's 200 Hz timer
    assert arrival[-1] - arrival[0] > 0.8  # as sent: not queued up and delivered at once


def test_topic_on_the_wire_is_rt_prefixed(domain):
    """An independent check of the naming: a plain Cyclone DDS reader on rt/robot/imu."""
    from cyclonedds.core import Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.qos import Policy
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    participant = DomainParticipant(domain)
    reader = DataReader(participant, Topic(participant, "rt/robot/imu", Imu),
                        Qos(Policy.Reliability.Reliable(0), Policy.History.KeepLast(10)))
    proc = start("""
pub = node("/robot").publisher("imu", Imu, DEFAULT)
wait_for_subscriber(pub)
for i in range(3):
    pub.publish(imu_sample(i))
time.sleep(0.3)
""", domain)
    finish(proc)
    assert reader.take(N=10) == [imu_sample(i) for i in range(3)]
    assert dds_topic_name("/robot/imu") == "rt/robot/imu"


def test_image_64x48_mono8(domain):
    proc = start("""
pub = node("/cam").publisher("image_raw", Image)      # -> /cam/image_raw
wait_for_subscriber(pub)
image = image_sample()
image.data = bytes(image.data)  # as a node sends a numpy image: .tobytes()
pub.publish(image)
time.sleep(0.3)
""", domain)
    got, elsewhere = [], []
    node = DdsTransport("sub", "/", domain_id=domain)
    node.subscribe("/cam/image_raw", Image, got.append)
    node.subscribe("image_raw", Image, elsewhere.append)  # /image_raw: another topic
    node.spin(until=lambda: proc.poll() is not None, timeout_s=20)
    node.close()
    finish(proc)
    assert got == [image_sample()] and elsewhere == []
    image = got[0]
    assert (image.width, image.height, image.step, len(image.data)) == (64, 48, 64, 64 * 48)


def test_type_mismatch_and_incompatible_qos_are_logged(domain, capsys):
    proc = start("""
t = node()
mix = t.publisher("/mix", Float64)                 # the test subscribes with String
lossy = t.publisher("/lossy", Float64, SENSOR_DATA)  # the test asks for reliable
ok = t.publisher("/ok", Float64)
wait_for_subscriber(ok)
count = [0]
def tick():
    count[0] += 1
    for pub in (mix, lossy, ok):
        pub.publish(Float64(count[0]))
t.timer(0.02, tick)
t.spin(timeout_s=1.5)
""", domain)
    mix, lossy, ok = [], [], []
    node = DdsTransport("sub", domain_id=domain)
    node.subscribe("/mix", String, mix.append)
    node.subscribe("/lossy", Float64, lossy.append, DEFAULT)
    node.subscribe("/ok", Float64, ok.append)
    node.spin(until=lambda: len(ok) >= 20 or proc.poll() is not None, timeout_s=20)
    node.close()
    child_err = finish(proc)
    err = capsys.readouterr().err
    assert len(ok) >= 20 and mix == [] and lossy == []
    assert ("[WARN] [sub]: type mismatch on /mix: a publisher of std_msgs/msg/Float64, "
            "this node uses std_msgs/msg/String") in err
    assert "[WARN] [sub]: a publisher on /lossy has incompatible QoS (reliability)" in err
    # the other side sees it too, and neither crashed
    assert "[WARN] [pub]: type mismatch on /mix: a subscriber of std_msgs/msg/String" in child_err


def test_bad_sample_and_raising_callback_are_logged_and_spinning_goes_on(domain, capsys):
    proc = start("""
pub = node().publisher("words", String)
wait_for_subscriber(pub)
for i in range(8):
    msg = String(str(i))
    if i == 3:  # a string that is not UTF-8: Cyclone passes it, decoding fails
        msg.serialize = lambda **kw: bytes([0, 1, 0, 0, 3, 0, 0, 0, 0xff, 0xfe, 0, 0])
    pub.publish(msg)
    time.sleep(0.01)
time.sleep(0.3)
""", domain)
    got = []

    def callback(msg):
        got.append(msg.data)
        if msg.data == "5":
            raise ZeroDivisionError("five")

    node = DdsTransport("sub", domain_id=domain)
    node.subscribe("words", String, callback)
    node.spin(until=lambda: proc.poll() is not None, timeout_s=20)
    node.close()
    finish(proc)
    err = capsys.readouterr().err
    assert got == ["0", "1", "2", "4", "5", "6", "7"]
    assert "[ERROR] [sub]: dropped a sample on /words: 'utf-8' codec can't decode" in err
    assert "[ERROR] [sub]: callback on /words raised ZeroDivisionError: five" in err


# In one process


def test_name_resolution():
    assert resolve_name("imu", "/robot", "n") == "/robot/imu"
    assert resolve_name("imu", "/", "n") == "/imu"
    assert resolve_name("/imu", "/robot", "n") == "/imu"
    assert resolve_name("a/b", "/robot", "n") == "/robot/a/b"
    assert resolve_name("~/state", "/robot", "n") == "/robot/n/state"
    for bad in ("", "/", "1imu", "a//b", "a/", "~x", "im u"):
        with pytest.raises(ValueError):
            resolve_name(bad, "/", "n")
    for name, namespace in (("a/b", "/"), ("1n", "/"), ("n", "/1x"), ("n", "/a//b")):
        with pytest.raises(ValueError):
            DdsTransport(name, namespace)


def test_remapping_params_and_log(domain, capsys):
    a = DdsTransport("a", "robot", params={"rate_hz": 20.0, "typo": 1}, domain_id=domain,
                     remappings={"out": "/shared"})
    b = DdsTransport("b", "/other", domain_id=domain, log_level="debug")
    assert a.namespace == "/robot" and a.resolve("out") == "/shared"
    assert a.resolve("in") == "/robot/in"
    got = []
    b.subscribe("/shared", Float64, got.append)
    pub = a.publisher("out", Float64)
    end = time.monotonic() + 5
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        time.sleep(0.01)
    pub.publish(Float64(2.0))
    pub.publish(String("wrong type"))  # logged, not raised
    b.spin(until=lambda: bool(got), timeout_s=5)
    assert got == [Float64(2.0)]

    assert a.param("rate_hz", 10.0) == 20.0 and a.param("gain", 0.5) == 0.5
    assert a.unknown_params() == ["typo"]
    a.log("debug", "hidden at the default level")
    b.log("debug", "shown")
    err = capsys.readouterr().err
    assert "[ERROR] [a]: publish on /shared: a String, the topic carries Float64" in err
    assert "hidden" not in err and "[DEBUG] [b]: shown" in err
    with pytest.raises(ValueError):
        a.log("warning", "not a level")
    with pytest.raises(TypeError):  # one topic, two types, in one node: a bug
        a.subscribe("out", String, print)
    a.close()
    b.close()
    a.close()  # twice is fine


def test_timers_keep_running_when_a_callback_raises(domain, capsys):
    node = DdsTransport("timers", domain_id=domain)
    ticks, slow = [], []

    def tick():
        ticks.append(time.monotonic())
        if len(ticks) == 2:
            raise RuntimeError("boom")

    node.timer(0.01, tick)
    node.timer(0.1, lambda: slow.append(1))
    start_s = time.monotonic()
    node.spin(timeout_s=0.5)
    assert 0.45 < time.monotonic() - start_s < 0.7
    assert 35 <= len(ticks) <= 51 and 4 <= len(slow) <= 5
    assert "[ERROR] [timers]: timer raised RuntimeError: boom" in capsys.readouterr().err
    node.spin(until=lambda: True)  # returns at once
    node.close()
    node.spin(timeout_s=5)  # closed: returns at once


def test_loopback_configuration():
    root = ET.fromstring(loopback_config())
    assert root.find("Domain/General/AllowMulticast").text == "false"
    assert root.find("Domain/Discovery/Peers/Peer").get("address") == "127.0.0.1"
    assert loopback_env({"A": "1"}) == {"A": "1", "CYCLONEDDS_URI": loopback_config()}
    before = os.environ.get("CYCLONEDDS_URI")
    with loopback():
        assert os.environ["CYCLONEDDS_URI"] == loopback_config()
    assert os.environ.get("CYCLONEDDS_URI") == before
