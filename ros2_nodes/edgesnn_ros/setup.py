"""colcon build of the edgesnn_ros package (a ROS 2 workspace: src/edgesnn/ros2_nodes/...).
The node modules are the same files `pip install edgesnn` installs as edgesnn_ros."""

from glob import glob

from setuptools import setup

NODES = ("imu_activity", "place_recognition", "altitude_controller", "blimp", "replay")

setup(
    name="edgesnn_ros",
    version="0.1.0",
    packages=["edgesnn_ros"],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/edgesnn_ros"]),
        ("share/edgesnn_ros", ["package.xml"]),
        # the launch files and stack description live at the repository's top level
        ("share/edgesnn_ros/launch", glob("../../launch/*.py") + glob("../../launch/*.yaml")),
    ],
    install_requires=["setuptools"],
    entry_points={"console_scripts": [f"{n} = edgesnn_ros.{n}:main" for n in NODES]},
)
