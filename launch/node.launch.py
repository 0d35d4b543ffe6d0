"""ros2 launch edgesnn_ros node.launch.py node:=NAME — one node of stack.yaml, by name
(blimp, altitude_controller, sensor_replay, imu_activity, place_recognition)."""

import importlib.util
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

_here = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("stack_launch", _here / "stack.launch.py")
_stack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_stack)


def _chosen(context):
    return _stack.shared().nodes(only=LaunchConfiguration("node").perform(context))


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([DeclareLaunchArgument("node", description="node name in stack.yaml"),
                              OpaqueFunction(function=_chosen)])
