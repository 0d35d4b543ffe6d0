"""The nodes as separate processes over Cyclone DDS on loopback, observed from this
process as another DDS participant: recorded IMU in → the right activities out; a
set-point change → the blimp converges; sensor silence → the fallback command within
the timeout; `edgesnn launch` starts a stack and refuses a bad one."""

import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest


from edgesnn.cli import main  # noqa: E402
from edgesnn.classify import StreamingClassifier  # noqa: E402
from edgesnn.models.reference import DEMO_SENSOR_BAG, L2MU_DEMO_MODEL  # noqa: E402
from edgesnn.modelfile import load_model  # noqa: E402
from edgesnn.ros.bag import read_bag  # noqa: E402
from edgesnn.ros.dds import DdsTransport, loopback, loopback_env  # noqa: E402
from edgesnn.ros.msgs import Activity, DiagnosticArray, Float64, Range  # noqa: E402
from edgesnn.ros.transport import SENSOR_DATA  # noqa: E402
from edgesnn.runtime import Runtime  # noqa: E402

pytestmark = pytest.mark.slow


@contextmanager
def node(executable: str, *ros_args: str):
    """One node as a process (python -m edgesnn_ros.<executable> --ros-args ...)."""
    proc = subprocess.Popen([sys.executable, "-m", f"edgesnn_ros.{executable}", "--ros-args",
                             *ros_args], env=loopback_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        print(f"--- {executable} ---\n{out}")


@pytest.fixture
def observer():
    with loopback():
        t = DdsTransport("test_observer")
        yield t
        t.close()


def test_recorded_imu_in_gives_the_activities_of_the_offline_classifier(observer):
    got = []
    observer.subscribe("/activity", Activity, got.append)
    samples = [m for topic, m, _ in read_bag(DEMO_SENSOR_BAG) if topic == "/imu"]
    stream = StreamingClassifier(Runtime(load_model(L2MU_DEMO_MODEL), "numpy-int"), hop=40,
                                 reset_each_decision=True)
    expected = []
    for m in samples:
        a, w = m.linear_acceleration, m.angular_velocity
        decision = stream.push(np.array([a.x, a.y, a.z, w.x, w.y, w.z], np.float32))
        if decision is not None:
            expected.append(decision.name)
    with node("imu_activity", "-r", "__node:=imu_activity"), \
            node("replay", "-r", "__node:=replay", "-p", "delay_s:=2.0", "-p", "rate:=4.0"):
        observer.spin(until=lambda: len(got) >= len(expected), timeout_s=60)
    assert [a.label for a in got] == expected
    assert all(0 < a.confidence <= 1 for a in got)


def test_a_setpoint_change_is_flown_to(observer):
    altitude = []
    observer.subscribe("/blimp/altitude", Float64, lambda m: altitude.append(m.data))
    setpoint = observer.publisher("/blimp/setpoint", Float64)
    with node("blimp", "-r", "__node:=blimp", "-r", "__ns:=/blimp"), \
            node("altitude_controller", "-r", "__node:=altitude_controller", "-r", "__ns:=/blimp",
                 "-p", "controller:=pid", "-p", "setpoint:=0.3"):
        observer.spin(timeout_s=15)
        assert abs(np.mean(altitude[-20:]) - 0.3) < 0.08  # settled at the first set-point
        for _ in range(5):  # reliable QoS; repeated while the subscription matches
            setpoint.publish(Float64(data=0.6))
            observer.spin(timeout_s=0.2)
        observer.spin(timeout_s=15)
        assert abs(np.mean(altitude[-20:]) - 0.6) < 0.08


def test_sensor_silence_gives_the_fallback_command_within_the_timeout(observer):
    commands, diagnostics = [], []
    observer.subscribe("/blimp/command", Float64, lambda m: commands.append(m.data))
    observer.subscribe("/blimp/diagnostics", DiagnosticArray, diagnostics.append)
    ranges = observer.publisher("/blimp/range", Range, SENSOR_DATA)
    with node("altitude_controller", "-r", "__node:=altitude_controller", "-r", "__ns:=/blimp",
              "-p", "controller:=pid", "-p", "setpoint:=1.0", "-p", "timeout_s:=0.5",
              "-p", "fallback:=0.0"):
        sensing = [True]

        def feed():
            if sensing[0]:
                ranges.publish(Range(range=0.4, min_range=0.0, max_range=12.0))
        observer.timer(0.05, feed)
        observer.spin(timeout_s=4)
        flying = list(commands[-10:])
        assert flying and all(c > 0 for c in flying)  # below the set-point: climbing
        sensing[0] = False  # the sensor goes silent
        n = len(commands)
        observer.spin(timeout_s=1.5)
        after = commands[n:]
        # within timeout_s (0.5 s = 5 ticks at 10 Hz) and one tick, the fallback, and it stays
        assert after[-5:] == [0.0] * 5 and after.index(0.0) <= 7
        assert any(s.level >= 1 for d in diagnostics for s in d.status)


def test_launch_starts_a_stack_and_refuses_a_bad_one(tmp_path, capsys):
    stack = tmp_path / "stack.yaml"
    stack.write_text("nodes:\n  - executable: blimp\n    name: blimp\n    namespace: /b\n")
    assert main(["launch", str(stack), "--duration", "3"]) == 0
    assert "simulated blimp" in capsys.readouterr().out
    stack.write_text("nodes:\n  - executable: teleporter\n")
    assert main(["launch", str(stack)]) == 1
    assert "unknown executable 'teleporter'" in capsys.readouterr().err
    stack.write_text("nodes: []\n")
    assert main(["launch", str(stack)]) == 1


def test_record_writes_what_a_node_publishes_to_a_bag(tmp_path, capsys):
    with node("blimp", "-r", "__node:=blimp", "-r", "__ns:=/blimp"):
        assert main(["record", str(tmp_path / "run"), "--topic", "/blimp/range:sensor_msgs/msg/Range",
                     "--topic", "/blimp/altitude:std_msgs/msg/Float64", "--seconds", "3"]) == 0
    msgs = list(read_bag(tmp_path / "run"))
    topics = {t for t, _, _ in msgs}
    assert topics == {"/blimp/range", "/blimp/altitude"}
    assert sum(t == "/blimp/range" for t, _, _ in msgs) >= 10  # 10 Hz for ~2 s after discovery
    assert main(["record", str(tmp_path / "x"), "--topic", "/a:no_such/msg/Type", "--seconds", "1"]) == 1
    assert "NAME:TYPE" in capsys.readouterr().err
