"""A rosbag2 recording → its topics, with the recorded timing (recorded IMU samples or
camera images as if the sensors were running).

Publishes every message of ``bag`` (a rosbag2 directory or an .mcap file; topics of
types edgesnn.ros.msgs does not define are skipped with a warning) on its recorded
topic, at its recorded receive time relative to the first message, divided by
``rate``. Messages go out as recorded, header stamps included (as ``ros2 bag play``).
Sensor messages (Imu, Image, Range) are published with sensor-data QoS, as sensor
drivers publish them; others reliably. Every topic's publisher exists from the start
and playback begins ``delay_s`` later, so that subscribers started beside this node
have discovered it before the first message (a lost first IMU samples would shift
every activity window). Without ``loop`` the node exits after the last message.

Parameters:
  bag (string)      default: the shipped demo recording (IMU windows of the synthetic
                    activities, camera images of the demo route, and their true labels)
  rate (double)     1.0: playback speed factor (2.0: twice as fast)
  loop (bool)       false: start over after the last message (without a new delay)
  delay_s (double)  1.0: seconds between start-up and the first message
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rosbags.rosbag2 import Reader

from edgesnn.errors import DataError
from edgesnn.models.reference import DEMO_SENSOR_BAG
from edgesnn.ros.bag import read_bag
from edgesnn.ros.msgs import BY_ROS_NAME, Image, Imu, Range
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA, Publisher, Transport
from edgesnn_ros.common import ConfigurationError, flag, number, run, text

TICK_S = 0.002  # messages go out on a timer of this period: timing kept within 2 ms
SENSOR_TYPES = (Imu, Image, Range)


def recorded_topics(path: str) -> dict[str, type]:
    """Topic → message type of a bag's connections of the types msgs.py defines, from
    the bag's metadata: no message is read (a camera bag can be gigabytes)."""
    try:
        with Reader(path) as reader:
            return {c.topic: BY_ROS_NAME[c.msgtype] for c in reader.connections
                    if c.msgtype in BY_ROS_NAME}
    except Exception as exc:  # rosbags raises many types on a missing or corrupt file
        raise DataError(f"{path}: cannot read the bag ({exc})") from None


class ReplayNode:
    def __init__(self, transport: Transport):
        self.transport = transport
        self.path = text(transport, "bag", str(DEMO_SENSOR_BAG))
        self.rate = number(transport, "rate", 1.0, positive=True)
        self.loop = flag(transport, "loop", False)
        self.delay_s = number(transport, "delay_s", 1.0)
        if self.delay_s < 0:
            raise ConfigurationError(f"parameter delay_s must be >= 0, got {self.delay_s:g}")
        self.publishers: dict[str, Publisher] = {
            topic: transport.publisher(topic, msg_type,
                                       SENSOR_DATA if msg_type in SENSOR_TYPES else DEFAULT)
            for topic, msg_type in recorded_topics(self.path).items()}
        self.published = 0
        self._open()
        if self.pending is None:
            raise DataError(f"{self.path}: no messages of the types edgesnn.ros.msgs defines")
        transport.timer(TICK_S, self.on_tick)
        self.summary = (f"replaying {self.path} at {self.rate:g}x"
                        + (", looping" if self.loop else ""))

    def _open(self) -> None:
        self.messages: Iterator[tuple[str, Any, int]] = read_bag(self.path)
        self.pending = self._next()
        self.origin: tuple[float, int] | None = None  # (now, bag ns) of this pass's start

    def _next(self) -> tuple[str, Any, int] | None:
        try:
            return next(self.messages, None)
        except Exception as exc:  # rosbags raises many types on a missing or corrupt file
            raise DataError(f"{self.path}: cannot read the bag ({exc})") from None

    def finished(self) -> bool:
        return self.pending is None

    def on_tick(self) -> None:
        if self.pending is None:
            return
        now = self.transport.now()
        while self.pending is not None:
            topic, msg, t_ns = self.pending
            if self.origin is None:  # a pass starts: the first one after the delay
                self.origin = (now + (self.delay_s if not self.published else 0.0), t_ns)
            if self.origin[0] + (t_ns - self.origin[1]) * 1e-9 / self.rate > now:
                return
            self.publishers[topic].publish(msg)
            self.published += 1
            try:
                self.pending = self._next()
            except DataError as exc:  # corrupt past its start: stop, like the end of the bag
                self.transport.log("error", str(exc))
                self.pending = None
            if self.pending is None and self.loop:
                self._open()
                return  # the next pass starts on the next tick, not in this one
        self.transport.log("info", f"replayed {self.published} messages: done")


def main(argv: Sequence[str] | None = None) -> int:
    return run(ReplayNode, "replay", argv)


if __name__ == "__main__":
    sys.exit(main())
