"""``edgesnn launch``: a ROS 2 node graph without ROS, on the built-in DDS transport."""

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


def cmd_launch(args) -> int:
    from edgesnn.ros.launch import load_stack, run

    stack = load_stack(args.stack)
    print(f"starting {len(stack.nodes)} nodes: "
          + ", ".join(f"{n.namespace.rstrip('/')}/{n.name}" for n in stack.nodes))
    return run(stack, args.duration)
