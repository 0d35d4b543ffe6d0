"""``edgesnn launch`` and ``edgesnn demo``: ROS 2 node graphs without ROS, on the
built-in DDS transport."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("launch", help="start a stack of ROS 2 nodes without ROS (DDS transport)",
                       description="Start the nodes of a stack file (launch/stack.yaml: "
                                   "executables, names, namespaces, remappings, a ROS 2 "
                                   "parameter file) as processes talking Cyclone DDS, wire-"
                                   "compatible with ROS 2; on a ROS system, ros2 launch "
                                   "edgesnn_ros stack.launch.py starts the same graph. "
                                   "CYCLONEDDS_URI defaults to loopback only. Ctrl-C stops all.")
    p.add_argument("stack", type=Path, help="stack file (.yaml)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("record", help="record DDS topics to a rosbag2 MCAP file (no ROS needed)",
                       description="Subscribe to the given topics over the built-in DDS transport "
                                   "(loopback unless CYCLONEDDS_URI says otherwise) and write what "
                                   "arrives, with its receive time, to a rosbag2 bag (MCAP "
                                   "storage) that ros2 bag and the replay node read.",
                       epilog="example: edgesnn record run1 --topic /imu:sensor_msgs/msg/Imu "
                              "--topic /activity:edgesnn_msgs/msg/Activity --seconds 30")
    p.add_argument("out", type=Path, help="bag directory to create")
    p.add_argument("--topic", action="append", required=True, metavar="NAME:TYPE",
                   help="a topic and its ROS type, e.g. /imu:sensor_msgs/msg/Imu (repeatable)")
    p.add_argument("--seconds", type=float, required=True, help="how long to record")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("demo", help="the whole sensing-to-action loop over DDS, on the shipped models",
                       description="Starts the stack of launch/stack.yaml as processes over "
                                   "Cyclone DDS on loopback, on the shipped models and the shipped "
                                   "sensor recording: a simulated blimp flown by the SNN altitude "
                                   "controller through a set-point step (0.5 m, then 1.0 m at "
                                   "15 s), recorded IMU samples classified by the L2MU, recorded "
                                   "camera images recognised by the place ensemble. Prints a live "
                                   "status line and a summary table (decisions against the "
                                   "recorded truth, message latency, altitude error).")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to run (30)")
    p.add_argument("--plot", type=Path, help="write the flight (altitude, set-point, command) PNG")
    p.set_defaults(func=cmd_demo)


def cmd_launch(args) -> int:
    from edgesnn.ros.launch import load_stack, run

    stack = load_stack(args.stack)
    print(f"starting {len(stack.nodes)} nodes: "
          + ", ".join(f"{n.namespace.rstrip('/')}/{n.name}" for n in stack.nodes))
    return run(stack, args.duration)


def cmd_demo(args) -> int:
    from edgesnn.ros.demo import run_demo

    return run_demo(args.seconds, args.plot)


def cmd_record(args) -> int:
    import os
    import time
    from contextlib import nullcontext

    from edgesnn.errors import InputError
    from edgesnn.ros.bag import write_bag
    from edgesnn.ros.dds import DdsTransport, loopback
    from edgesnn.ros.msgs import BY_ROS_NAME
    from edgesnn.ros.transport import SENSOR_DATA

    topics = []
    for item in args.topic:
        name, _, type_name = item.partition(":")
        if type_name not in BY_ROS_NAME:
            raise InputError(f"--topic {item!r}: give NAME:TYPE with TYPE one of "
                             f"{', '.join(sorted(BY_ROS_NAME))}")
        topics.append((name, BY_ROS_NAME[type_name]))
    if args.out.exists():
        raise InputError(f"{args.out} exists; choose a new bag path")
    recorded = []
    with loopback() if "CYCLONEDDS_URI" not in os.environ else nullcontext():
        node = DdsTransport("edgesnn_record")
        for name, msg_type in topics:
            # best effort: such a reader matches reliable and best-effort publishers alike
            node.subscribe(name, msg_type,
                           lambda m, n=name: recorded.append((n, m, time.time_ns())), SENSOR_DATA)
        node.spin(timeout_s=args.seconds)
        node.close()
    write_bag(args.out, recorded)
    counts = {n: sum(1 for t, _, _ in recorded if t == n) for n, _ in topics}
    print(f"wrote {args.out}: " + ", ".join(f"{n} x{c}" for n, c in counts.items()))
    return 0
