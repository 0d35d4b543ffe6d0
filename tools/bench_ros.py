"""Per-node latency and sustained rate over Cyclone DDS on loopback, in one table:

    python tools/bench_ros.py [--seconds 5]

Each node runs as its own process; this process publishes its sensor messages at a
fixed rate (stamped with the send time, on this machine's clock) and receives what the
node publishes. Latency = receive time − stamp of the sensor message the output
answers (the nodes copy that header): sensor message in → action message out, through
DDS, the node's callback and the SNN step, and back through DDS.

- imu_activity at 100 and 200 Hz (an output every hop = 40 samples: its latency is the
  step that completes a decision);
- place_recognition at 100 and 200 Hz (64×64 mono8 images);
- altitude_controller ticking at 100 and 200 Hz on a 200 Hz range stream: the command
  rate it sustains (its output carries no stamp; its latency is bounded by its period).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

from edgesnn.data import har
from edgesnn.models.reference import VPR_DEMO_ROUTE
from edgesnn.models.vpr import synthetic
from edgesnn.ros.dds import DdsTransport, loopback, loopback_env
from edgesnn.ros.msgs import Activity, Float64, Header, Image, Imu, Place, Range, Vector3, stamp
from edgesnn.ros.transport import SENSOR_DATA


@contextmanager
def node(executable: str, *params: str):
    cmd = [sys.executable, "-m", f"edgesnn_ros.{executable}", "--ros-args",
           "-r", f"__node:={executable}"] + [a for p in params for a in ("-p", p)]
    proc = subprocess.Popen(cmd, env=loopback_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def seconds_of(t) -> float:
    return t.sec + t.nanosec * 1e-9


WARMUP_S = 2.0


def drive(t: DdsTransport, topic: str, msg_type, make, rate_hz: float,
          seconds: float) -> tuple[int, float]:
    """Publish make(i) at rate_hz for WARMUP_S + seconds, stamped with the send time;
    returns (messages sent in the timed part, wall time the timed part began)."""
    pub = t.publisher(topic, msg_type, SENSOR_DATA)
    begin = time.time() + WARMUP_S
    state = {"i": 0, "timed": 0}

    def tick():
        msg = make(state["i"])
        now = time.time()
        msg.header.stamp = stamp(now)
        pub.publish(msg)
        state["i"] += 1
        state["timed"] += now >= begin

    t.timer(1.0 / rate_hz, tick)
    t.spin(timeout_s=WARMUP_S + seconds)
    return state["timed"], begin


def latency_row(name: str, rate_hz: float, received: list[tuple[float, float]],
                driven: tuple[int, float], per_output: int, seconds: float) -> list[str]:
    """Outputs answering inputs sent in the timed part: latency and how many arrived."""
    sent, begin = driven
    # the driving timer keeps running while the last outputs are collected: count only
    # the answers to inputs sent in the timed part
    lat = np.array([(r - s) * 1e3 for r, s in received if begin <= s < begin + seconds])
    expected = sent / per_output
    got = len(lat)
    return [name, f"{rate_hz:g} Hz", f"{np.median(lat):.2f}" if got else "-",
            f"{np.percentile(lat, 99):.2f}" if got else "-", f"{got / seconds:.1f}",
            f"{100 * got / expected:.0f} %" if expected else "-"]


def bench_decisions(executable: str, sensor: tuple[str, type], make, output: tuple[str, type],
                    rate_hz: float, per_output: int, seconds: float) -> list[str]:
    """A recognition node: sensor messages in at ``rate_hz``, its decisions (which copy
    the answered message's header) out."""
    received = []
    with loopback():
        t = DdsTransport(f"bench_{executable}")
        t.subscribe(output[0], output[1],
                    lambda m: received.append((time.time(), seconds_of(m.header.stamp))))
        with node(executable):
            t.spin(timeout_s=3)  # discovery and model load
            driven = drive(t, sensor[0], sensor[1], make, rate_hz, seconds)
            t.spin(timeout_s=0.5)
        t.close()
    name = f"{executable} ({sensor[1].__name__} → {output[1].__name__})"
    return latency_row(name, rate_hz, received, driven, per_output, seconds)


def bench_imu(rate_hz: float, seconds: float) -> list[str]:
    ds = har.synthetic(n_subjects=1, windows_per_class=4, seed=5)
    samples = ds.x.reshape(-1, ds.x.shape[-1])

    def make(i: int) -> Imu:
        s = samples[i % len(samples)]
        return Imu(header=Header(), linear_acceleration=Vector3(*map(float, s[:3])),
                   angular_velocity=Vector3(*map(float, s[3:6])))

    return bench_decisions("imu_activity", ("/imu", Imu), make, ("/activity", Activity), rate_hz,
                           40, seconds)


def bench_place(rate_hz: float, seconds: float) -> list[str]:
    world = synthetic.make_world(VPR_DEMO_ROUTE["places"], VPR_DEMO_ROUTE["seed"])
    grey = synthetic.render(world, "dusk", seed=7).mean(axis=-1).astype(np.uint8)

    def make(i: int) -> Image:
        return Image(header=Header(), height=64, width=64, encoding="mono8", step=64,
                     data=grey[i % len(grey)].tobytes())

    return bench_decisions("place_recognition", ("/image", Image), make, ("/place", Place),
                           rate_hz, 1, seconds)


def bench_controller(tick_hz: float, seconds: float) -> list[str]:
    commands = []
    with loopback():
        t = DdsTransport("bench_controller")
        t.subscribe("/command", Float64, lambda m: commands.append(time.time()))
        with node("altitude_controller", f"rate_hz:={tick_hz}", "controller:=pid"):
            t.spin(timeout_s=3)
            _, begin = drive(t, "/range", Range,
                             lambda i: Range(header=Header(), range=0.4, max_range=12.0),
                             200.0, seconds)
        t.close()
    times = np.array(commands)
    times = times[(times >= begin) & (times < begin + seconds)]
    period = np.diff(times) * 1e3
    return ["altitude_controller (Range → command)", f"tick {tick_hz:g} Hz",
            f"≤ {1e3 / tick_hz:.1f} (period)", f"{np.percentile(period, 99):.2f} (gap)",
            f"{len(times) / seconds:.1f}", f"{100 * len(times) / (tick_hz * seconds):.0f} %"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row")
    args = parser.parse_args()
    rows = [["node", "input rate", "latency median ms", "p99 ms", "outputs/s", "of expected"]]
    for hz in (100.0, 200.0):
        rows.append(bench_imu(hz, args.seconds))
    for hz in (100.0, 200.0):
        rows.append(bench_place(hz, args.seconds))
    for hz in (100.0, 200.0):
        rows.append(bench_controller(hz, args.seconds))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


if __name__ == "__main__":
    main()
