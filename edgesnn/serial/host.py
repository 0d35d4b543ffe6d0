"""Talk to a device running firmware/device/protocol.c over a serial port (pyserial).

    with Device("/dev/ttyACM0") as dev:
        info = dev.hello()              # model id, name, sizes, max body
        dev.reset()
        y = dev.step(x_int16)           # (inputs,) → (outputs,) int32
        ys = dev.run(xs_int16)          # (T, inputs) → (T, outputs), in RUN chunks
        dev.stats()

One request is in flight at a time. A reply belongs to the request whose seq and type it
echoes; anything else on the line (late replies to timed-out requests, answers to line
noise, corrupted frames) is discarded. Requests are never resent automatically: a STEP
that timed out may still have run on the device, so only the caller can decide whether
to reset and replay.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgesnn.errors import InputError, require
from edgesnn.serial.protocol import (
    MAX_BODY,
    PROTOCOL_VERSION,
    REPLY,
    DeviceError,
    DeviceTimeout,
    ErrorReply,
    Frame,
    FrameDecoder,
    FrameError,
    Hello,
    MsgType,
    ProtocolError,
    Stats,
    encode_frame,
    pack_run,
    pack_step,
    run_chunk_steps,
    unpack_outputs,
)


class Device:
    """A device on ``port``: a path or URL for pyserial, or an open port-like object
    (``read``, ``write``, ``reset_input_buffer``, ``timeout``, ``close``).

    ``timeout`` (seconds) bounds the wait for each reply, including one RUN chunk.
    """

    # Reads return after this long without data, to check the deadline. A fixed value:
    # pyserial reconfigures the port on every change of its timeout.
    _POLL = 0.05

    def __init__(self, port: str | Any, timeout: float = 1.0, baudrate: int = 115200):
        poll = min(timeout, self._POLL)
        if isinstance(port, str):
            serial = require("serial", "serial")
            try:
                port = serial.serial_for_url(port, baudrate=baudrate, timeout=poll)
            except serial.SerialException as exc:
                raise ProtocolError(f"cannot open serial port {port!r}: {exc}") from exc
        else:
            port.timeout = poll
        self.port = port
        self.timeout = timeout
        self.info: Hello | None = None
        self.discarded = 0  # frames read that answered no pending request
        self._seq = 0

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------
    def hello(self) -> Hello:
        """Ask what the device runs; also done by the first step/run if not yet."""
        info = Hello.unpack(self._request(MsgType.HELLO))
        if info.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(f"device speaks protocol {info.protocol_version}; "
                                f"this host speaks {PROTOCOL_VERSION}")
        if not 0 < info.max_body <= MAX_BODY or run_chunk_steps(
                info.inputs, info.outputs, info.max_body) < 1:
            raise ProtocolError(f"device reports max body {info.max_body} for "
                                f"{info.inputs} inputs / {info.outputs} outputs: unusable")
        self.info = info
        return info

    def reset(self) -> None:
        """Zero the model state and the step counters."""
        self._request(MsgType.RESET, expect=0)

    def step(self, x: np.ndarray) -> np.ndarray:
        """One model step on int16 inputs (inputs,) → int32 outputs (outputs,)."""
        info = self.info or self.hello()
        body = self._request(MsgType.STEP, pack_step(x, info.inputs))
        return unpack_outputs(body, info.outputs, 1)[0]

    def run(self, xs: np.ndarray) -> np.ndarray:
        """Consecutive steps (T, inputs) int16 → (T, outputs) int32, sent in RUN chunks
        as large as the device's max body allows."""
        info = self.info or self.hello()
        xs = np.asarray(xs)
        if xs.ndim != 2 or xs.shape[1] != info.inputs:
            raise InputError(f"run takes (T, {info.inputs}) inputs; got shape {xs.shape}")
        k = run_chunk_steps(info.inputs, info.outputs, info.max_body)
        out = [np.empty((0, info.outputs), np.int32)]
        for start in range(0, len(xs), k):
            chunk = xs[start:start + k]
            body = self._request(MsgType.RUN, pack_run(chunk, info.inputs))
            out.append(unpack_outputs(body, info.outputs, len(chunk)))
        return np.concatenate(out)

    def stats(self) -> Stats:
        return Stats.unpack(self._request(MsgType.STATS))

    # -- transport -----------------------------------------------------------------
    def _request(self, msg_type: MsgType, body: bytes = b"", expect: int | None = None) -> bytes:
        """Send one request; return the body of its reply."""
        self._seq = (self._seq + 1) & 0xFFFF
        seq = self._seq
        # Bytes already waiting cannot answer this request: drop them unread.
        self.port.reset_input_buffer()
        # The leading delimiter ends any partial frame the device may be holding (line
        # noise, an interrupted write), so this frame starts clean.
        self.port.write(b"\x00" + encode_frame(msg_type, seq, body))
        reply = self._await(seq, msg_type)
        if reply.msg_type == MsgType.ERROR:
            raise DeviceError(ErrorReply.unpack(reply.body).code, f"{msg_type.name} (seq {seq})")
        if expect is not None and len(reply.body) != expect:
            raise ProtocolError(f"{msg_type.name} reply has {len(reply.body)} body bytes; "
                                f"expected {expect}")
        return reply.body

    def _await(self, seq: int, msg_type: MsgType) -> Frame:
        deadline = time.monotonic() + self.timeout
        decoder = FrameDecoder()  # fresh: a partial frame from before must not absorb the reply
        corrupted = 0
        while time.monotonic() < deadline:
            data = self.port.read(max(1, getattr(self.port, "in_waiting", 0)))
            for item in decoder.feed(data):
                if isinstance(item, FrameError):
                    corrupted += 1
                elif _answers(item, seq, msg_type):
                    return item
                else:
                    self.discarded += 1
        extra = f" ({corrupted} corrupted frame(s) received)" if corrupted else ""
        raise DeviceTimeout(f"no reply to {msg_type.name} (seq {seq}) within {self.timeout} s"
                            f"{extra}")


def _answers(frame: Frame, seq: int, msg_type: MsgType) -> bool:
    """Whether ``frame`` is the reply to request (seq, msg_type): its type, or an ERROR
    naming that request type, with the same seq."""
    if frame.seq != seq:
        return False
    if frame.msg_type == MsgType.ERROR:
        try:
            return ErrorReply.unpack(frame.body).request_type == msg_type
        except FrameError:
            return False
    return frame.msg_type == msg_type | REPLY
