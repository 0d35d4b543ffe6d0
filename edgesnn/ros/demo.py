"""``edgesnn demo``: the whole sensing-to-action loop over real DDS on loopback.

launch/stack.yaml's graph, each node its own process (the shipped models and the
shipped sensor recording): the simulated blimp flown by the SNN altitude controller
through a set-point schedule, the recorded IMU classified by the L2MU, the recorded
camera images recognised by the place ensemble. This process joins as one more DDS
participant: it publishes the set-points, listens to everything, prints a live status
line and a summary table, and can plot the flight.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

from edgesnn.ros.dds import DdsTransport, loopback
from edgesnn.ros.launch import NodeSpec, Stack, run_in_background
from edgesnn.ros.msgs import Activity, Float64, Image, Imu, Place
from edgesnn.ros.transport import SENSOR_DATA

SCHEDULE = ((0.0, 0.5), (15.0, 1.0))  # (from second, set-point m)


def _stamp_s(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


@dataclass
class Stream:
    """Decisions of one recognition node beside the recorded truth."""

    truth: dict[float, object] = field(default_factory=dict)  # sensor stamp → true value
    seen: dict[float, float] = field(default_factory=dict)  # sensor stamp → when it arrived here
    got: list[tuple[float, object, float]] = field(default_factory=list)  # (stamp, value, ms)

    def score(self) -> tuple[int, int]:
        matched = [(v, self.truth[s]) for s, v, _ in self.got if s in self.truth]
        return sum(v == t for v, t in matched), len(matched)

    def latency(self) -> np.ndarray:
        lat = np.array([ms for _, _, ms in self.got])
        return lat[np.isfinite(lat)]


@dataclass
class Flight:
    time: list[float] = field(default_factory=list)
    altitude: list[float] = field(default_factory=list)
    setpoint: list[float] = field(default_factory=list)
    command: list[float] = field(default_factory=list)


def demo_stack(params: Path) -> Stack:
    """The demo's graph: stack.yaml's nodes, the replay not looping."""
    return Stack([NodeSpec("blimp", "blimp", "/blimp"),
                  NodeSpec("altitude_controller", "altitude_controller", "/blimp"),
                  NodeSpec("replay", "sensor_replay"),
                  NodeSpec("imu_activity", "imu_activity"),
                  NodeSpec("place_recognition", "place_recognition")], params)


def run_demo(seconds: float = 30.0, plot: Path | None = None, out=sys.stdout) -> int:
    params = Path(str(files("edgesnn.ros") / "demo_params.yaml"))
    activity, place, flight = Stream(), Stream(), Flight()
    live = hasattr(out, "isatty") and out.isatty()
    logged: set[int] = set()
    last = {"command": float("nan"), "altitude": float("nan")}
    with loopback():
        observer = DdsTransport("demo_observer")

        # latency: the sensor message and the decision answering it (same stamp: the
        # nodes copy the header) as both arrive here — the recording's stamps are not
        # this machine's clock
        def on_sensor(stream: Stream):
            return lambda m: stream.seen.setdefault(_stamp_s(m.header), time.monotonic())

        def on_decision(stream: Stream, value):
            def record(m):
                s = _stamp_s(m.header)
                ms = (time.monotonic() - stream.seen[s]) * 1e3 if s in stream.seen else float("nan")
                stream.got.append((s, value(m), ms))
            return record

        observer.subscribe("/imu", Imu, on_sensor(activity), SENSOR_DATA)
        observer.subscribe("/image", Image, on_sensor(place), SENSOR_DATA)

        observer.subscribe("/activity", Activity, on_decision(activity, lambda m: m.label))
        observer.subscribe("/activity/truth", Activity,
                           lambda m: activity.truth.__setitem__(_stamp_s(m.header), m.label))
        observer.subscribe("/place", Place, on_decision(place, lambda m: m.place))
        observer.subscribe("/place/truth", Place,
                           lambda m: place.truth.__setitem__(_stamp_s(m.header), m.place))
        observer.subscribe("/blimp/command", Float64, lambda m: last.__setitem__("command", m.data))
        observer.subscribe("/blimp/altitude", Float64,
                           lambda m: last.__setitem__("altitude", m.data))
        setpoint_pub = observer.publisher("/blimp/setpoint", Float64)
        with run_in_background(demo_stack(params)) as nodes:
            start = time.monotonic()

            def tick():
                t = time.monotonic() - start
                sp = [v for s, v in SCHEDULE if t >= s][-1]
                setpoint_pub.publish(Float64(data=sp))
                flight.time.append(t)
                flight.setpoint.append(sp)
                flight.altitude.append(last["altitude"])
                flight.command.append(last["command"])

            def status():
                a_ok, a_n = activity.score()
                p_ok, p_n = place.score()
                act = activity.got[-1][1] if activity.got else "-"
                plc = place.got[-1][1] if place.got else "-"
                err = flight.setpoint[-1] - last["altitude"] if flight.setpoint else float("nan")
                line = (f"t {time.monotonic() - start:5.1f} s | altitude {last['altitude']:5.2f} m, "
                        f"error {err:+5.2f} m, command {last['command']:+5.2f} | activity "
                        f"{act:<8} {a_ok}/{a_n} | place {plc!s:>3} {p_ok}/{p_n}")
                if live:  # one line, rewritten in place
                    out.write(f"\r{line} ")
                elif int((time.monotonic() - start) // 5) not in logged:  # a log: every 5 s
                    logged.add(int((time.monotonic() - start) // 5))
                    out.write(line + "\n")
                out.flush()

            observer.timer(0.1, tick)
            observer.timer(0.5, status)
            observer.spin(until=lambda: nodes.failed() is not None, timeout_s=seconds)
            if live:
                out.write("\n")
            failed = nodes.failed()
        observer.close()
    if failed is not None:
        out.write(f"node {failed} stopped early; its output is above\n")
        return 1
    out.write(summary(activity, place, flight, seconds) + "\n")
    if plot is not None:
        plot_flight(flight, plot)
        out.write(f"wrote {plot}\n")
    return 0


def summary(activity: Stream, place: Stream, flight: Flight, seconds: float) -> str:
    rows = [("node", "outputs", "correct (recorded truth)", "latency median ms", "p99 ms")]
    for name, stream in (("imu_activity", activity), ("place_recognition", place)):
        ok, n = stream.score()
        lat = stream.latency()
        rows.append((name, str(len(stream.got)), f"{ok}/{n}",
                     f"{np.median(lat):.2f}" if len(lat) else "-",
                     f"{np.percentile(lat, 99):.2f}" if len(lat) else "-"))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    t, alt = np.array(flight.time), np.array(flight.altitude, float)
    # a run shorter than the schedule ends its last set-point early
    ends = [min(s, seconds) for s, _ in SCHEDULE[1:]] + [seconds]
    for (begin, level), end in zip(SCHEDULE, ends):
        if begin >= seconds:
            break
        tail = alt[(t > max(begin, end - 3.0)) & (t <= end)]
        if len(tail) and np.isfinite(tail).any():
            lines.append(f"altitude_controller: set-point {level:g} m from {begin:g} s, mean "
                         f"|error| over the last 3 s before {end:g} s: "
                         f"{np.nanmean(np.abs(tail - level)) * 100:.1f} cm")
    return "\n".join(lines)


def plot_flight(flight: Flight, path: Path) -> None:
    from edgesnn.controllers.closed_loop import Flight as ClosedLoopFlight
    from edgesnn.controllers.closed_loop import plot_flight as plot

    row = lambda v: np.array([v], float)  # noqa: E731  (one flight: batch 1)
    plot({"SNN controller over DDS": ClosedLoopFlight(
        time=np.array(flight.time), setpoint=row(flight.setpoint), measurement=row(flight.altitude),
        altitude=row(flight.altitude), command=row(flight.command))}, path,
        title="edgesnn demo: simulated blimp, SNN altitude controller")
