"""Shared by the launch files here: launch_ros Node actions from a stack YAML (the
format `edgesnn launch` reads too, so both launchers start the same graph)."""

from pathlib import Path

import yaml
from launch_ros.actions import Node

HERE = Path(__file__).resolve().parent


def nodes(stack: str = "stack.yaml", only: str = "") -> list:
    spec = yaml.safe_load((HERE / stack).read_text())
    params = str(HERE / spec["parameters"])
    return [Node(package="edgesnn_ros", executable=node["executable"],
                 name=node.get("name", node["executable"]), namespace=node.get("namespace", "/"),
                 parameters=[params], remappings=list(node.get("remappings", {}).items()),
                 output="screen")
            for node in spec["nodes"] if not only or node.get("name", node["executable"]) == only]
