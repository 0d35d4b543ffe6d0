"""ROS 2 nodes wiring sensors to edgesnn models to actions.

Each module holds one node: a class ``XNode(transport)`` whose logic sees only the
Transport interface (edgesnn/ros/transport.py), and ``main(argv)``, which builds a
transport from ROS command-line arguments and spins it:

    python -m edgesnn_ros.imu_activity --params params.yaml
    python -m edgesnn_ros.blimp --ros-args -r __ns:=/blimp -p rate_hz:=20.0

- ``imu_activity``: sensor_msgs/Imu → L2MU → edgesnn_msgs/Activity
- ``place_recognition``: sensor_msgs/Image → place ensemble → edgesnn_msgs/Place
- ``altitude_controller``: sensor_msgs/Range + set-point → safe controller → command
- ``blimp``: a simulated blimp flown by ``command``, measured by ``range``
- ``replay``: the messages of a rosbag2 (MCAP) recording, with their timing
"""
