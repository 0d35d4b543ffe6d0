"""ROS 2 without a ROS install: message types, a Cyclone DDS transport wire-compatible
with ROS 2 (rmw_cyclonedds), an rclpy adapter, rosbag2 (MCAP) files. The node logic
lives in ros2_nodes/ and sees only the Transport interface (transport.py)."""
