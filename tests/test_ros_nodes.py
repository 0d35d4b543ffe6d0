"""The ROS 2 nodes' logic (ros2_nodes/edgesnn_ros), driven through their callbacks.

Each node runs on a real DdsTransport (parameters, name resolution and remapping,
message types and publishing are the real ones; DDS stays on loopback), subclassed
here only to record what the node publishes and logs and to give it a clock the test
sets: asserting on what reaches another process is the end-to-end tests' job, and a
settable clock makes staleness and replay timing exact instead of sleep-dependent.
"""

from collections import defaultdict

import numpy as np
import pytest

import edgesnn


from edgesnn.backends import get_backend  # noqa: E402
from edgesnn.classify import window_logits  # noqa: E402
from edgesnn.controllers.safety import SafetyConfig  # noqa: E402
from edgesnn.data import har  # noqa: E402
from edgesnn.models.reference import L2MU_DEMO_MODEL, VPR_DEMO_MODEL, VPR_DEMO_ROUTE  # noqa: E402
from edgesnn.models.vpr import synthetic  # noqa: E402
from edgesnn.models.vpr.ensemble import place_metadata, similarity  # noqa: E402
from edgesnn.ros.bag import write_bag  # noqa: E402
from edgesnn.ros.dds import DdsTransport, loopback  # noqa: E402
from edgesnn.ros.msgs import (DiagnosticStatus, Float64, Header, Image, Imu,  # noqa: E402
                              Range, Time, Vector3, stamp)
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA  # noqa: E402

from edgesnn_ros import (altitude_controller, blimp, common, imu_activity,  # noqa: E402
                         place_recognition, replay)


class RecordingTransport(DdsTransport):
    """DdsTransport that also records publishes (by topic) and log lines, on a clock
    the test sets (``clock``, seconds)."""

    def __init__(self, name, params=None, **kwargs):
        super().__init__(name, params=params, **kwargs)
        self.sent = defaultdict(list)
        self.qos = {}
        self.logs = []
        self.clock = 1000.0

    def publisher(self, topic, msg_type, qos=DEFAULT):
        real = super().publisher(topic, msg_type, qos)
        sent = self.sent[topic]
        self.qos[topic] = qos

        class Recorder:
            def publish(self, msg):
                assert isinstance(msg, msg_type)
                sent.append(msg)
                real.publish(msg)

        return Recorder()

    def subscribe(self, topic, msg_type, callback, qos=DEFAULT):
        self.qos[topic] = qos
        super().subscribe(topic, msg_type, callback, qos)

    def now(self):
        return self.clock

    def log(self, level, text):
        self.logs.append((level, text))
        super().log(level, text)

    def logged(self, level):
        return [text for lv, text in self.logs if lv == level]


@pytest.fixture(scope="module", autouse=True)
def dds_on_loopback():
    with loopback():
        yield


@pytest.fixture
def transport():
    made = []

    def make(name, **params):
        t = RecordingTransport(name, params)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def imu_message(sample, t):
    acc, gyro = sample[:3], sample[3:]
    return Imu(header=Header(stamp=stamp(t), frame_id="imu_link"),
               linear_acceleration=Vector3(*map(float, acc)),
               angular_velocity=Vector3(*map(float, gyro)))


def image_message(pixels, encoding, padding=0):
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    step = rows.shape[1] + padding
    data = np.zeros((h, step), np.uint8)
    data[:, :rows.shape[1]] = rows
    return Image(header=Header(stamp=Time(sec=5), frame_id="camera"), height=h, width=w,
                 encoding=encoding, step=step, data=data.tobytes())


# ------------------------------------------------------------------ activity


@pytest.fixture(scope="module")
def activity_windows():
    ds = har.synthetic(n_subjects=3, windows_per_class=3, seed=2024)
    expected = window_logits(edgesnn.load(L2MU_DEMO_MODEL, "numpy-int"), ds.x)
    return ds, expected


def stream_windows(node, transport, windows, nans_before=None, nans=0):
    """Every sample of every window as an Imu message, 20 Hz; ``nans`` NaN samples
    before sample ``nans_before`` of each window."""
    t = 0.0
    for window in windows:
        for k, sample in enumerate(window):
            for _ in range(nans if k == nans_before else 0):
                node.on_imu(imu_message(np.full(6, np.nan), t))
            t += 0.05
            node.on_imu(imu_message(sample, t))
    return transport.sent["activity"]


def test_imu_stream_gives_the_models_labels_stamped_from_the_imu(transport, activity_windows):
    ds, logits = activity_windows
    t = transport("imu_activity")
    node = common.start(imu_activity.ImuActivityNode, t)
    assert t.qos["imu"] == SENSOR_DATA
    out = stream_windows(node, t, ds.x)
    assert len(out) == len(ds.x)  # hop = 40 = the synthetic windows
    assert [a.label for a in out] == [ds.classes[k] for k in logits.argmax(axis=1)]
    assert np.mean([a.label == ds.classes[y] for a, y in zip(out, ds.y)]) >= 0.7
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose([a.confidence for a in out], probs.max(axis=1), rtol=1e-5)
    last = out[-1].header
    assert (last.stamp.sec + last.stamp.nanosec * 1e-9, last.frame_id) == \
        (pytest.approx(len(ds.x) * 40 * 0.05), "imu_link")


def test_nan_imu_samples_are_skipped_with_one_warning(transport, activity_windows):
    ds, logits = activity_windows
    t = transport("imu_activity")
    node = common.start(imu_activity.ImuActivityNode, t)
    out = stream_windows(node, t, ds.x[:3], nans_before=10, nans=3)
    # the skipped samples do not count: every window is still classified as offline
    assert [a.label for a in out] == [ds.classes[k] for k in logits[:3].argmax(axis=1)]
    warnings = t.logged("warn")
    assert len(warnings) == 3 and "NaN" in warnings[0]  # once per run of bad samples
    assert any("usable again" in text for text in t.logged("info"))


def test_hop_and_reset_are_parameters(transport, activity_windows):
    ds, _ = activity_windows
    t = transport("imu_activity", hop=20, reset_each_decision=False)
    node = common.start(imu_activity.ImuActivityNode, t)
    assert node.stream.hop == 20 and not node.stream.reset_each_decision
    assert len(stream_windows(node, t, ds.x[:2])) == 4


# ------------------------------------------------------------------ places


@pytest.fixture(scope="module")
def route_images():
    world = synthetic.make_world(VPR_DEMO_ROUTE["places"], VPR_DEMO_ROUTE["seed"])
    return synthetic.render(world, "dusk",
                            seed=synthetic.traverse_seed(VPR_DEMO_ROUTE["seed"], "query", 0))


def test_place_recognition_matches_the_ensemble_for_every_encoding(transport, route_images):
    t = transport("place_recognition")
    node = common.start(place_recognition.PlaceRecognitionNode, t)
    model = edgesnn.load_model(VPR_DEMO_MODEL)
    layout, pre = place_metadata(model)
    expected = similarity(get_backend("numpy-int")(model), pre(route_images), layout)
    grey = pre(route_images[:3].mean(axis=3).round().astype(np.uint8))
    for pixels in route_images:
        node.on_image(image_message(pixels, "rgb8", padding=5))
    for pixels in route_images[:3]:
        node.on_image(image_message(pixels[..., ::-1], "bgr8"))
        node.on_image(image_message(pixels.mean(axis=2).round().astype(np.uint8), "mono8"))
    out = t.sent["place"]
    assert [p.place for p in out[:24]] == list(expected.argmax(axis=1))
    np.testing.assert_allclose([p.score for p in out[:24]], expected.max(axis=1), rtol=1e-6)
    assert np.mean([p.place == k for k, p in enumerate(out[:24])]) >= 0.8
    assert [p.place for p in out[24::2]] == [p.place for p in out[:3]]  # bgr8 = rgb8
    assert [p.place for p in out[25::2]] == list(
        similarity(node.program, grey, layout).argmax(axis=1))
    assert out[0].header.stamp.sec == 5 and out[0].header.frame_id == "camera"
    assert t.qos["image"] == SENSOR_DATA


def test_bad_images_are_rejected_and_the_node_keeps_working(transport, route_images):
    t = transport("place_recognition")
    node = common.start(place_recognition.PlaceRecognitionNode, t)
    good = image_message(route_images[7], "rgb8")
    wrong_encoding = image_message(route_images[7], "rgba8")
    short = image_message(route_images[7], "rgb8")
    short.data = short.data[:-1]
    as_list = image_message(route_images[7], "rgb8")
    as_list.data = list(as_list.data)  # how received messages carry the bytes
    for msg in (wrong_encoding, short, good, short, as_list):
        node.on_image(msg)
    errors = t.logged("error")
    assert len(errors) == 2  # one per run of rejected images
    assert "rgba8" in errors[0] and "step x height" in errors[1]
    assert [p.place for p in t.sent["place"]] == [7, 7]


# ------------------------------------------------------------------ altitude loop


def range_message(value, now):
    limits = SafetyConfig()
    return Range(header=Header(stamp=stamp(now)), radiation_type=Range.INFRARED,
                 min_range=limits.min_measurement, max_range=limits.max_measurement, range=value)


def test_stale_and_nan_ranges_fall_back_with_diagnostics(transport):
    # timeout 0.45 s: ticks every 0.1 s are clearly fresh or stale, never on the boundary
    t = transport("altitude_controller", controller="pid", setpoint=1.0, timeout_s=0.45)
    node = common.start(altitude_controller.AltitudeControllerNode, t)
    assert (t.qos["range"], t.qos["setpoint"]) == (SENSOR_DATA, DEFAULT)
    node.on_tick()                                   # 0: nothing measured yet
    node.on_range(range_message(0.8, t.clock))
    for _ in range(6):                               # 1-6: the sensor goes silent
        t.clock += 0.1
        node.on_tick()
    node.on_range(range_message(0.8, t.clock))
    node.on_tick()                                   # 7: a fresh reading
    node.on_range(range_message(float("nan"), t.clock))
    node.on_tick()                                   # 8, 9: NaN
    node.on_tick()
    commands = [c.data for c in t.sent["command"]]   # a command every tick
    fell_back = [c == 0.0 for c in commands]
    assert fell_back == [True, False, False, False, False, True, True, False, True, True]
    assert commands[1] > 1.0  # the PID pushes up towards 1.0 m
    statuses = [d.status[0] for d in t.sent["diagnostics"]]
    W, E, OK = DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.OK
    assert [s.level for s in statuses] == [W, OK, E, E, OK, E, E]
    assert "no measurement" in statuses[0].message and "stale" in statuses[2].message
    assert "not a finite number" in statuses[5].message
    assert {v.key: v.value for v in statuses[5].values}["range"] == "nan"
    # logged once per episode, not every tick
    assert len(t.logged("warn")) == 1 and len(t.logged("error")) == 2
    assert sum("controller in command again" in text for text in t.logged("info")) == 2


def test_a_fallback_episode_is_logged_again_when_it_gets_worse(transport):
    t = transport("altitude_controller", controller="pid")
    node = common.start(altitude_controller.AltitudeControllerNode, t)
    node.on_tick()  # no reading yet: a warning
    node.on_tick()
    node.on_range(range_message(float("inf"), t.clock))
    node.on_tick()  # a reading, and a bad one: an error, in the same episode
    node.on_tick()
    assert len(t.logged("warn")) == 1 and len(t.logged("error")) == 1
    assert [d.status[0].level for d in t.sent["diagnostics"]] == [DiagnosticStatus.WARN] * 2 \
        + [DiagnosticStatus.ERROR] * 2


def test_controller_and_blimp_converge_after_a_setpoint_change(transport):
    tc = transport("altitude_controller")  # the shipped SNN PD + SNN I
    tb = transport("blimp")
    controller = common.start(altitude_controller.AltitudeControllerNode, tc)
    plant = common.start(blimp.BlimpNode, tb)
    assert tb.qos["range"] == SENSOR_DATA and tb.qos["command"] == DEFAULT

    def fly(seconds):
        for _ in range(int(round(seconds * 10))):
            tc.clock = tb.clock = tc.clock + 0.1
            controller.on_tick()
            plant.on_command(tc.sent["command"][-1])
            plant.on_tick()
            controller.on_range(tb.sent["range"][-1])
        return np.array([m.data for m in tb.sent["altitude"][-100:]])  # last 10 s

    # take off to the default 0.5 m, then the step to 1.0 m of the paper's schedule
    assert np.abs(fly(40) - 0.5).max() < 0.02
    controller.on_setpoint(Float64(data=1.0))
    assert np.abs(fly(40) - 1.0).max() < 0.02
    assert tc.logged("error") == [] and tb.logged("warn") == []
    r = tb.sent["range"][-1]
    assert (r.radiation_type, r.min_range, r.max_range) == (Range.INFRARED, 0.0, 12.0)


def test_blimp_holds_the_last_command_then_stops_the_motors(transport):
    t = transport("blimp", command_timeout_s=0.25)
    node = common.start(blimp.BlimpNode, t)
    applied = []
    step = node.blimp.step
    node.blimp.step = lambda u: (applied.append(u), step(u))[1]
    node.on_command(Float64(data=2.0))
    node.on_command(Float64(data=float("nan")))  # ignored, logged
    for _ in range(6):
        t.clock += 0.1
        node.on_tick()
    assert applied == [2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    assert len(t.logged("error")) == 1 and len(t.logged("warn")) == 1
    assert all(r.range >= 0 for r in t.sent["range"])


def test_blimp_rests_on_the_floor(transport):
    t = transport("blimp")
    node = common.start(blimp.BlimpNode, t)
    for _ in range(600):  # a minute without commands: a blimp without a floor sinks
        t.clock += 0.1
        node.on_tick()
    assert t.sent["altitude"][-1].data == 0.0
    # the sensor's noise on the floor never reads below its minimum
    assert {round(r.range, 6) for r in t.sent["range"]} <= {0.0, 0.01}


# ------------------------------------------------------------------ replay


@pytest.fixture
def imu_bag(tmp_path):
    t0 = 1_000_000_000_000
    messages = [("/imu", imu_message(np.full(6, k, float), k * 0.01), t0 + k * 10_000_000)
                for k in range(10)]
    messages.append(("/setpoint", Float64(data=0.7), t0 + 50_000_000))
    messages.sort(key=lambda m: m[2])
    write_bag(tmp_path / "imu_bag", messages)
    return tmp_path / "imu_bag"


def test_replay_keeps_the_recorded_timing(transport, imu_bag):
    t = transport("replay", bag=str(imu_bag), rate=2.0, delay_s=0.5)
    node = common.start(replay.ReplayNode, t)
    assert set(t.qos) == {"/imu", "/setpoint"}  # every publisher exists before playback
    start = t.clock

    def at(seconds):  # tick at ``seconds`` after start-up
        t.clock = start + seconds
        node.on_tick()

    at(0.0)
    at(0.4999)
    assert t.sent["/imu"] == []
    at(0.5001)
    assert len(t.sent["/imu"]) == 1
    at(0.5249)  # 2x: the messages recorded 50 ms in are due 25 ms after the first
    assert (len(t.sent["/imu"]), t.sent["/setpoint"]) == (5, [])
    at(0.5251)
    assert (len(t.sent["/imu"]), [m.data for m in t.sent["/setpoint"]]) == (6, [0.7])
    assert not node.finished()
    at(2.0)
    assert node.finished()
    assert [m.linear_acceleration.x for m in t.sent["/imu"]] == list(range(10))
    assert (t.qos["/imu"], t.qos["/setpoint"]) == (SENSOR_DATA, DEFAULT)


def test_replay_loops(transport, imu_bag):
    t = transport("replay", bag=str(imu_bag), loop=True, delay_s=0.0)
    node = common.start(replay.ReplayNode, t)
    for _ in range(3):
        node.on_tick()
        t.clock += 1.0
        node.on_tick()
    assert len(t.sent["/imu"]) == 30 and not node.finished()


def test_the_shipped_recording_replayed_into_the_recognition_nodes(transport):
    tr, ti, tp = transport("replay", rate=100.0), transport("imu_activity"), \
        transport("place_recognition")
    player = common.start(replay.ReplayNode, tr)  # the shipped demo recording
    activity = common.start(imu_activity.ImuActivityNode, ti)
    places = common.start(place_recognition.PlaceRecognitionNode, tp)
    while not player.finished():
        tr.clock += 0.01
        player.on_tick()
    for msg in tr.sent["/imu"]:
        activity.on_imu(msg)
    for msg in tr.sent["/image"]:
        places.on_image(msg)
    truth = [m.label for m in tr.sent["/activity/truth"]]
    found = [m.label for m in ti.sent["activity"]]
    assert len(found) == len(truth) == 10
    assert np.mean([a == b for a, b in zip(found, truth)]) >= 0.7
    assert [m.place for m in tp.sent["place"]] == [m.place for m in tr.sent["/place/truth"]]


# ------------------------------------------------------------------ configuration


def run_main(module, argv, capsys):
    code = module.main(argv)
    return code, capsys.readouterr().err


def test_unknown_parameter_refuses_to_start(capsys):
    code, err = run_main(imu_activity, ["--ros-args", "-p", "hopp:=20"], capsys)
    assert code == 1 and "unknown parameter(s) hopp" in err and "not starting" in err


@pytest.mark.parametrize("module, argv, message", [
    (imu_activity, ["-p", "model:=missing.esnn"], "missing.esnn: no such model file"),
    (place_recognition, ["-p", f"model:={L2MU_DEMO_MODEL}"], "not a place-recognition model"),
    (altitude_controller, ["-p", "controller:=pd.esnn+i.esnn"], "pd.esnn: no such model file"),
    (altitude_controller, ["-p", "rate_hz:=fast"], "rate_hz must be a positive number"),
    (imu_activity, ["-p", "hop:=2.5"], "hop must be an integer"),
    (imu_activity, ["-p", "backend:=gpu"], "gpu"),
    (replay, ["-p", "bag:=nowhere.mcap"], "nowhere.mcap"),
    (replay, ["-p", "delay_s:=-1.0"], "delay_s must be >= 0"),
])
def test_bad_configuration_refuses_to_start(capsys, module, argv, message):
    code, err = run_main(module, ["--ros-args", *argv], capsys)
    assert code == 1 and message in err


def test_corrupt_model_refuses_to_start(capsys, tmp_path):
    bad = tmp_path / "bad.esnn"
    bad.write_bytes(b"not a model")
    code, err = run_main(imu_activity, ["--ros-args", "-p", f"model:={bad}"], capsys)
    assert code == 1 and str(bad) in err


def test_bad_command_line_refuses_to_start(capsys):
    code, err = run_main(blimp, ["--frobnicate"], capsys)
    assert code == 1 and "unknown argument" in err
    code, err = run_main(blimp, ["--ros-args", "-r", "__ns:=not a namespace"], capsys)
    assert code == 1 and "namespace" in err


def test_parameter_files_follow_ros_matching(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: false\n    rate_hz: 5.0\n"
        "blimp:\n  ros__parameters:\n    rate_hz: 1.0\n"            # the node /blimp only
        "/robot/blimp:\n  ros__parameters:\n    seed: 3\n"
        "/robot:\n  '*':\n    ros__parameters:\n      command_timeout_s: 0.2\n"
        "/**/blimp:\n  ros__parameters:\n    nested: {a: 1}\n")
    args = common.parse_args(["--params", str(path), "--ros-args", "-r", "__ns:=/robot",
                              "-p", "seed:=4", "-r", "command:=/cmd"], "blimp")
    assert args.fqn == "/robot/blimp"
    assert args.params == {"use_sim_time": False, "rate_hz": 5.0, "seed": 4,
                           "command_timeout_s": 0.2, "nested.a": 1}
    assert args.broadcast == {"use_sim_time", "rate_hz", "command_timeout_s"}
    t = common.make_transport(args)
    try:
        with pytest.raises(common.ConfigurationError, match="unknown parameter.*nested.a"):
            common.start(blimp.BlimpNode, t, args.broadcast)
        assert t.resolve("command") == "/cmd" and t.resolve("range") == "/robot/range"
    finally:
        t.close()
    root = common.parse_args(["--ros-args", "--params-file", str(path)], "blimp")
    assert root.params["rate_hz"] == 1.0 and "seed" not in root.params


def test_parameter_file_errors_are_clear(tmp_path):
    with pytest.raises(common.ConfigurationError, match="no such parameter file"):
        common.parse_args(["--params", str(tmp_path / "none.yaml")], "blimp")
    bad = tmp_path / "bad.yaml"
    bad.write_text("blimp:\n  rate_hz: 1.0\n")
    with pytest.raises(common.ConfigurationError, match="not under a ros__parameters"):
        common.parse_args(["--params", str(bad)], "blimp")
