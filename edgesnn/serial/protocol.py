"""The host ↔ device serial protocol: COBS framing, CRC-32, message bodies.

Pure encode/decode, no I/O (docs/serial-protocol.md is the specification; the C side is
firmware/device/protocol.c). A frame on the wire is

    COBS(header ‖ body ‖ crc32) 0x00
    header = version u8, type u8, seq u16, body length u16      (little-endian)
    crc32  = zlib.crc32(header ‖ body), u32

Decoding applies the checks in the same order as the device, and each failure raises
the FrameError subclass whose ``code`` is the ErrorCode the device answers with.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from edgesnn.errors import EdgesnnError, InputError

PROTOCOL_VERSION = 1
HEADER_SIZE = 6
CRC_SIZE = 4
MAX_BODY = 4096
MAX_FRAME = HEADER_SIZE + MAX_BODY + CRC_SIZE  # decoded bytes between two delimiters
# COBS adds one code byte per 254 data bytes (plus one): the longest valid encoding.
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1

_HEADER = struct.Struct("<BBHH")
_CRC = struct.Struct("<I")
REPLY = 0x80  # a reply's type is its request's type | REPLY


class MsgType(IntEnum):
    HELLO = 0x01
    RESET = 0x02
    STEP = 0x03
    RUN = 0x04
    STATS = 0x05
    HELLO_REPLY = HELLO | REPLY
    RESET_REPLY = RESET | REPLY
    STEP_REPLY = STEP | REPLY
    RUN_REPLY = RUN | REPLY
    STATS_REPLY = STATS | REPLY
    ERROR = 0xFF


REQUESTS = (MsgType.HELLO, MsgType.RESET, MsgType.STEP, MsgType.RUN, MsgType.STATS)
_KNOWN_TYPES = frozenset(MsgType)


class ErrorCode(IntEnum):
    """The first byte of an ERROR body; also the ``code`` of the matching exception."""

    BAD_FRAME = 1     # COBS block cut short by the delimiter, or shorter than header + CRC
    BAD_CRC = 2
    TOO_LARGE = 3     # frame over MAX_FRAME decoded bytes, or a RUN whose reply would be over
    BAD_VERSION = 4
    BAD_LENGTH = 5    # length field ≠ bytes received, or a body of the wrong size for its type
    UNKNOWN_TYPE = 6  # not a type this side accepts (the device accepts requests only)
    OUT_OF_ORDER = 7  # a STEP or RUN whose seq does not follow the last answered request's


# ------------------------------------------------------------------------- errors


class ProtocolError(EdgesnnError):
    """Anything that went wrong talking to a device."""


class FrameError(ProtocolError):
    """A frame that fails a check. ``seq`` and ``msg_type`` are the header's fields as
    received (possibly corrupted), or None when fewer than HEADER_SIZE bytes arrived."""

    code: ErrorCode

    def __init__(self, message: str, seq: int | None = None, msg_type: int | None = None):
        super().__init__(message)
        self.seq = seq
        self.msg_type = msg_type


class MalformedFrameError(FrameError):
    code = ErrorCode.BAD_FRAME


class CrcError(FrameError):
    code = ErrorCode.BAD_CRC


class FrameTooLargeError(FrameError):
    code = ErrorCode.TOO_LARGE


class VersionError(FrameError):
    code = ErrorCode.BAD_VERSION


class LengthError(FrameError):
    code = ErrorCode.BAD_LENGTH


class UnknownTypeError(FrameError):
    code = ErrorCode.UNKNOWN_TYPE


class DeviceError(ProtocolError):
    """The device answered a request with ERROR; the request was not executed."""

    def __init__(self, code: int, request: str):
        name = ErrorCode(code).name if code in set(ErrorCode) else f"code {code}"
        hint = ("; a request was lost or another host drove the device: its state is not "
                "what this host assumes — reset() and replay") if code == ErrorCode.OUT_OF_ORDER else ""
        super().__init__(f"device rejected {request}: {name} (the request was not executed){hint}")
        self.code = code


class DeviceTimeout(ProtocolError):
    """No matching reply within the timeout."""


# --------------------------------------------------------------------- COBS, CRC


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result contains no 0x00 (the delimiter).
    Each block is a code byte c and c - 1 data bytes; c < 0xFF means a zero follows
    (unless it is the last block), 0xFF marks 254 bytes with no zero after them."""
    out = bytearray()
    parts = data.split(b"\x00")
    for i, part in enumerate(parts):
        full = len(part) // 254
        for j in range(full):
            out.append(0xFF)
            out += part[254 * j:254 * (j + 1)]
        # a run of whole 0xFF blocks at the very end needs no empty closing block
        if len(part) % 254 or not full or i < len(parts) - 1:
            out.append(len(part) - 254 * full + 1)
            out += part[254 * full:]
    return bytes(out)


def _cobs_decode_partial(data: bytes) -> tuple[bytes, bool]:
    """Decode a delimiter-free COBS chunk as the device does byte by byte: each block's
    implied zero is added only when another block follows. Returns (bytes decoded so far,
    whether the last block was complete)."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            raise MalformedFrameError("0x00 inside a COBS chunk (it is the frame delimiter)")
        block = data[i + 1:i + code]
        out += block
        i += code
        if len(block) < code - 1:
            return bytes(out), False
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out), True


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; MalformedFrameError if the last block is cut short."""
    out, complete = _cobs_decode_partial(data)
    if not complete:
        raise MalformedFrameError("COBS block cut short: the frame is truncated")
    return out


def crc32(data: bytes) -> int:
    """CRC-32/IEEE 802.3 (zlib.crc32), as computed by firmware/device/crc32.c."""
    return zlib.crc32(data) & 0xFFFFFFFF


# ------------------------------------------------------------------------ frames


@dataclass(frozen=True)
class Frame:
    msg_type: int
    seq: int
    body: bytes = b""


def pack_payload(msg_type: int, seq: int, body: bytes = b"",
                 version: int = PROTOCOL_VERSION) -> bytes:
    """header ‖ body ‖ crc32, before COBS. Only the u16 length field limits the body
    (tests build oversized frames with this)."""
    if len(body) > 0xFFFF:
        raise FrameTooLargeError(f"body of {len(body)} bytes does not fit the length field",
                                 seq, msg_type)
    head = _HEADER.pack(version, msg_type, seq, len(body))
    return head + body + _CRC.pack(crc32(head + body))


def encode_frame(msg_type: int, seq: int, body: bytes = b"") -> bytes:
    """The wire bytes of one frame, ending in its 0x00 delimiter."""
    if len(body) > MAX_BODY:
        raise FrameTooLargeError(f"body of {len(body)} bytes exceeds MAX_BODY ({MAX_BODY})",
                                 seq, msg_type)
    return cobs_encode(pack_payload(msg_type, seq, body)) + b"\x00"


def _header_fields(payload: bytes) -> tuple[int | None, int | None]:
    if len(payload) < HEADER_SIZE:
        return None, None
    _, msg_type, seq, _ = _HEADER.unpack_from(payload)
    return seq, msg_type


def _check_payload(payload: bytes, complete: bool, overflow: bool) -> Frame:
    """The device's frame checks, in its order (docs/serial-protocol.md, "Frame checks")."""
    seq, msg_type = _header_fields(payload)
    if overflow or len(payload) > MAX_FRAME:
        raise FrameTooLargeError(f"frame exceeds {MAX_FRAME} decoded bytes", seq, msg_type)
    if not complete:
        raise MalformedFrameError("COBS block cut short: the frame is truncated", seq, msg_type)
    if len(payload) < HEADER_SIZE + CRC_SIZE:
        raise MalformedFrameError(f"frame of {len(payload)} bytes is shorter than header + CRC "
                                  f"({HEADER_SIZE + CRC_SIZE})", seq, msg_type)
    (received,) = _CRC.unpack_from(payload, len(payload) - CRC_SIZE)
    if crc32(payload[:-CRC_SIZE]) != received:
        raise CrcError("CRC-32 mismatch", seq, msg_type)
    version, _, _, length = _HEADER.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        raise VersionError(f"protocol version {version}; this side speaks {PROTOCOL_VERSION}",
                           seq, msg_type)
    if length != len(payload) - HEADER_SIZE - CRC_SIZE:
        raise LengthError(f"length field says {length} body bytes; the frame holds "
                          f"{len(payload) - HEADER_SIZE - CRC_SIZE}", seq, msg_type)
    if msg_type not in _KNOWN_TYPES:
        raise UnknownTypeError(f"unknown message type 0x{msg_type:02x}", seq, msg_type)
    return Frame(msg_type, seq, payload[HEADER_SIZE:-CRC_SIZE])


def decode_frame(wire: bytes) -> Frame:
    """One frame's wire bytes (the trailing delimiter is optional) → Frame, or the
    FrameError for the first check it fails."""
    if wire.endswith(b"\x00"):
        wire = wire[:-1]
    return _check_payload(*_cobs_decode_partial(wire), overflow=False)


class FrameDecoder:
    """Splits a byte stream at 0x00 delimiters and checks each frame. Chunks that decode to
    fewer than HEADER_SIZE bytes (empty frames, line noise) are skipped silently, as on the
    device: they name no request to answer."""

    # A chunk of L encoded bytes decodes to at least (L - 1) / 2 bytes (every COBS block
    # but the last yields at least half its length), so past this many buffered bytes the
    # frame is over MAX_FRAME whatever follows and the rest need not be kept.
    _KEEP = 2 * MAX_FRAME + 2

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        *complete, tail = bytes(data).split(b"\x00")
        for part in complete:
            chunk, overflow = self._take(part)
            payload, whole = _cobs_decode_partial(chunk)
            if len(payload) < HEADER_SIZE:
                continue
            try:
                out.append(_check_payload(payload, whole, overflow))
            except FrameError as exc:
                out.append(exc)
        self._add(tail)
        return out

    def _add(self, part: bytes) -> None:
        room = self._KEEP - len(self._buf)
        self._overflow |= len(part) > room
        self._buf += part[:max(room, 0)]

    def _take(self, part: bytes) -> tuple[bytes, bool]:
        self._add(part)
        chunk, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        return chunk, overflow


# ---------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Hello:
    """HELLO_REPLY: what the device runs and how large a body it accepts."""

    protocol_version: int
    model_id: int
    model_name: str
    inputs: int
    outputs: int
    max_body: int

    _FIXED = struct.Struct("<BIHHHB")

    def pack(self) -> bytes:
        name = self.model_name.encode()[:255]
        return self._FIXED.pack(self.protocol_version, self.model_id, self.inputs,
                                self.outputs, self.max_body, len(name)) + name

    @classmethod
    def unpack(cls, body: bytes) -> Hello:
        n = cls._FIXED.size
        if len(body) < n or len(body) != n + body[n - 1]:
            raise LengthError(f"HELLO reply of {len(body)} bytes is malformed")
        version, model_id, inputs, outputs, max_body, _ = cls._FIXED.unpack_from(body)
        return cls(version, model_id, body[n:].decode(errors="replace"), inputs, outputs,
                   max_body)


@dataclass(frozen=True)
class Stats:
    """STATS_REPLY: model steps and the cycles they took since the last RESET (or boot),
    and frames answered with ERROR since boot. The cycle unit is the platform's
    (CPU cycles on a microcontroller, nanoseconds in the host build)."""

    steps: int
    cycles: int
    errors: int

    _FMT = struct.Struct("<IQI")

    def pack(self) -> bytes:
        return self._FMT.pack(self.steps, self.cycles, self.errors)

    @classmethod
    def unpack(cls, body: bytes) -> Stats:
        if len(body) != cls._FMT.size:
            raise LengthError(f"STATS reply of {len(body)} bytes; expected {cls._FMT.size}")
        return cls(*cls._FMT.unpack(body))


@dataclass(frozen=True)
class ErrorReply:
    """ERROR body: the code and the type of the rejected request as received."""

    code: int
    request_type: int

    _FMT = struct.Struct("<BB")

    def pack(self) -> bytes:
        return self._FMT.pack(self.code, self.request_type)

    @classmethod
    def unpack(cls, body: bytes) -> ErrorReply:
        if len(body) != cls._FMT.size:
            raise LengthError(f"ERROR reply of {len(body)} bytes; expected {cls._FMT.size}")
        return cls(*cls._FMT.unpack(body))


def _as_int16(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise InputError(f"{what} must be integers (int16 device input); got dtype {x.dtype}")
    if x.size and (x.min() < -32768 or x.max() > 32767):
        raise InputError(f"{what} is outside the int16 range")
    return x.astype("<i2")


def pack_step(x: np.ndarray, inputs: int) -> bytes:
    """STEP body: ``inputs`` int16."""
    x = _as_int16(x, "STEP input")
    if x.shape != (inputs,):
        raise InputError(f"STEP input has shape {x.shape}; the model takes ({inputs},)")
    return x.tobytes()


def unpack_step(body: bytes, inputs: int) -> np.ndarray:
    if len(body) != 2 * inputs:
        raise LengthError(f"STEP body of {len(body)} bytes; expected {2 * inputs}")
    return np.frombuffer(body, "<i2").astype(np.int16)


def pack_run(xs: np.ndarray, inputs: int) -> bytes:
    """RUN body: count k (u16), then k × ``inputs`` int16, step by step."""
    xs = _as_int16(xs, "RUN input")
    if xs.ndim != 2 or xs.shape[1] != inputs:
        raise InputError(f"RUN input has shape {xs.shape}; the model takes (k, {inputs})")
    if len(xs) > 0xFFFF:
        raise InputError(f"RUN carries at most 65535 steps; got {len(xs)}")
    return struct.pack("<H", xs.shape[0]) + xs.tobytes()


def unpack_run(body: bytes, inputs: int) -> np.ndarray:
    if len(body) < 2:
        raise LengthError(f"RUN body of {len(body)} bytes has no step count")
    (k,) = struct.unpack_from("<H", body)
    if len(body) != 2 + 2 * k * inputs:
        raise LengthError(f"RUN body of {len(body)} bytes; {k} steps need {2 + 2 * k * inputs}")
    return np.frombuffer(body, "<i2", offset=2).astype(np.int16).reshape(k, inputs)


def pack_outputs(ys: np.ndarray) -> bytes:
    """STEP_REPLY / RUN_REPLY body: the int32 outputs, step by step."""
    return np.asarray(ys, dtype="<i4").tobytes()


def unpack_outputs(body: bytes, outputs: int, steps: int) -> np.ndarray:
    """→ (steps, outputs) int32."""
    if len(body) != 4 * outputs * steps:
        raise LengthError(f"reply of {len(body)} bytes; {steps} step(s) of {outputs} outputs "
                          f"need {4 * outputs * steps}")
    return np.frombuffer(body, "<i4").astype(np.int32).reshape(steps, outputs)


def run_chunk_steps(inputs: int, outputs: int, max_body: int) -> int:
    """The most steps one RUN can carry: its request and its reply must both fit."""
    return min((max_body - 2) // (2 * inputs), max_body // (4 * outputs), 0xFFFF)
