"""The serial protocol between a host and a device that runs an exported model
(docs/serial-protocol.md): ``protocol`` encodes and decodes frames and messages (no
I/O); ``host.Device`` drives a device over a serial port (the ``serial`` extra)."""

from edgesnn.serial.host import Device
from edgesnn.serial.protocol import (
    DeviceError,
    DeviceTimeout,
    FrameError,
    Hello,
    ProtocolError,
    Stats,
)

__all__ = ["Device", "DeviceError", "DeviceTimeout", "FrameError", "Hello", "ProtocolError",
           "Stats"]
