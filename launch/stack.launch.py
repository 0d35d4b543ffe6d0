"""ros2 launch edgesnn_ros stack.launch.py — every node of stack.yaml."""

import importlib.util
from pathlib import Path

from launch import LaunchDescription


def shared():
    """edgesnn_launch.py beside this file (launch files are loaded by path, not as a package)."""
    spec = importlib.util.spec_from_file_location(
        "edgesnn_launch", Path(__file__).resolve().parent / "edgesnn_launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(shared().nodes())
