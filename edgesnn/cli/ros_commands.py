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
