"""The serial protocol (docs/serial-protocol.md): encode/decode units, the host Device
against canned replies, and end to end against the host build of the C device running
the exported reference network, bit-exact with numpy-int, including a seeded fuzz run."""

import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import astuple
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

import edgesnn
from edgesnn.backends import get_backend
from edgesnn.errors import InputError, MissingExtraError
from edgesnn.export.c import export_c
from edgesnn.models.reference import REFERENCE_MODEL, lif_mlp, reference_input
from edgesnn.serial import Device, DeviceError, DeviceTimeout, ProtocolError
from edgesnn.serial.protocol import (
    MAX_BODY,
    MAX_ENCODED,
    MAX_FRAME,
    REPLY,
    REQUESTS,
    CrcError,
    DeviceError,
    ErrorCode,
    ErrorReply,
    Frame,
    FrameDecoder,
    FrameError,
    FrameTooLargeError,
    Hello,
    LengthError,
    MalformedFrameError,
    MsgType,
    Stats,
    UnknownTypeError,
    VersionError,
    cobs_decode,
    cobs_encode,
    crc32,
    decode_frame,
    encode_frame,
    pack_outputs,
    pack_payload,
    pack_run,
    pack_step,
    run_chunk_steps,
    unpack_outputs,
    unpack_run,
    unpack_step,
)

# --------------------------------------------------------------------------- COBS, CRC

COBS_VECTORS = [  # from the COBS paper / Wikipedia's examples
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("data, encoded", COBS_VECTORS)
def test_cobs_known_vectors(data, encoded):
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


def test_cobs_round_trip_zeros_and_254_byte_runs():
    rng = np.random.default_rng(0)
    cases = [bytes(n) for n in (1, 253, 254, 255, 508, 1034)]
    cases += [b"\x07" * n for n in (253, 254, 255, 508, 509, 1034)]
    cases += [b"\x07" * 254 + b"\x00" + b"\x07" * 254, b"\x00" + b"\x07" * 254 + b"\x00"]
    for _ in range(300):  # mostly zeros, mostly non-zero, and uniform bytes
        n = int(rng.integers(0, MAX_FRAME + 1))
        p_zero = rng.choice([0.0, 0.01, 0.5, 0.99])
        cases.append(np.where(rng.random(n) < p_zero, 0, rng.integers(1, 256, n))
                     .astype(np.uint8).tobytes())
    for data in cases:
        enc = cobs_encode(data)
        assert 0 not in enc
        assert cobs_decode(enc) == data
        if len(data) <= MAX_FRAME:
            assert len(enc) <= MAX_ENCODED


def test_cobs_decode_rejects_cut_blocks_and_zeros():
    with pytest.raises(MalformedFrameError, match="cut short"):
        cobs_decode(b"\x05\x11\x22")
    with pytest.raises(MalformedFrameError, match="0x00"):
        cobs_decode(b"\x02\x11\x00\x01")


def test_crc32_known_value():
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32/IEEE check value
    assert crc32(b"") == 0


# ------------------------------------------------------------------------------ frames


def test_frame_layout_is_little_endian_header_body_crc():
    wire = encode_frame(MsgType.STEP, 0x1234, b"\x01\x02")
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    payload = cobs_decode(wire[:-1])
    assert payload[:6] == bytes([1, 0x03, 0x34, 0x12, 0x02, 0x00])
    assert payload[6:8] == b"\x01\x02"
    assert int.from_bytes(payload[8:], "little") == crc32(payload[:8])
    assert decode_frame(wire) == Frame(MsgType.STEP, 0x1234, b"\x01\x02")


def _wire(payload: bytes) -> bytes:
    return cobs_encode(payload) + b"\x00"


def _relength(payload: bytes, length: int) -> bytes:
    """The payload with another length field and a CRC that matches it."""
    body = payload[:4] + length.to_bytes(2, "little") + payload[6:-4]
    return body + crc32(body).to_bytes(4, "little")


GOOD = pack_payload(MsgType.STEP, 7, b"\x01\x02\x03\x04")
BAD_FRAMES = {  # name → (wire bytes, exception, code)
    "cobs block cut short": (cobs_encode(GOOD)[:-2] + b"\x00", MalformedFrameError,
                             ErrorCode.BAD_FRAME),
    "shorter than header + crc": (_wire(GOOD[:8]), MalformedFrameError, ErrorCode.BAD_FRAME),
    "crc": (_wire(GOOD[:-1] + bytes([GOOD[-1] ^ 0x40])), CrcError, ErrorCode.BAD_CRC),
    "body bit flip": (_wire(GOOD[:7] + b"\x00" + GOOD[8:]), CrcError, ErrorCode.BAD_CRC),
    "version": (_wire(pack_payload(MsgType.STEP, 7, b"\x01", version=2)), VersionError,
                ErrorCode.BAD_VERSION),
    "length field": (_wire(_relength(GOOD, 3)), LengthError, ErrorCode.BAD_LENGTH),
    "unknown type": (_wire(pack_payload(0x42, 7)), UnknownTypeError, ErrorCode.UNKNOWN_TYPE),
    "oversized": (_wire(pack_payload(MsgType.STEP, 7, bytes(MAX_BODY + 1))),
                  FrameTooLargeError, ErrorCode.TOO_LARGE),
}


@pytest.mark.parametrize("name", BAD_FRAMES)
def test_every_bad_frame_kind_raises_its_error(name):
    wire, exc, code = BAD_FRAMES[name]
    with pytest.raises(exc) as info:
        decode_frame(wire)
    assert info.value.code == code
    assert (info.value.seq, info.value.msg_type) == (7, 0x42 if name == "unknown type" else 3)
    assert FrameDecoder().feed(wire)[0].code == code  # the stream decoder agrees


def test_encode_frame_refuses_bodies_over_the_maximum():
    encode_frame(MsgType.RUN, 1, bytes(MAX_BODY))
    with pytest.raises(FrameTooLargeError):
        encode_frame(MsgType.RUN, 1, bytes(MAX_BODY + 1))


def test_stream_decoder_handles_any_split_noise_and_runaway_frames():
    frames = [Frame(MsgType.STEP_REPLY, s, bytes(range(s % 7)) * 30) for s in range(20)]
    stream = b"".join(encode_frame(f.msg_type, f.seq, f.body) for f in frames)
    rng = np.random.default_rng(3)
    for _ in range(20):  # frames split anywhere come out whole
        dec, got = FrameDecoder(), []
        cuts = np.sort(rng.integers(0, len(stream), 15))
        for a, b in zip([0, *cuts], [*cuts, len(stream)]):
            got += dec.feed(stream[a:b])
        assert got == frames
    # noise without a header is skipped; 100 KB without a delimiter is one oversized frame
    # (buffered no further), and the decoder is in sync again after it
    dec = FrameDecoder()
    assert dec.feed(b"\x00\x03\x01\x02\x00\x00") == []
    runaway = dec.feed(cobs_encode(pack_payload(MsgType.STEP, 9, b"\x05" * 60_000))
                       + b"\x05" * 40_000)
    assert runaway == [] and len(dec._buf) <= 2 * MAX_FRAME + 2
    out = dec.feed(b"\x00" + stream[:len(stream) // 2])
    assert isinstance(out[0], FrameTooLargeError) and out[0].seq == 9
    assert out[1:] == frames[:len(out) - 1]


# ---------------------------------------------------------------------------- messages


def test_message_bodies_round_trip():
    hello = Hello(1, 0xE5EEB4B7, "lif-mlp-64-128-10", 64, 10, 1024)
    assert Hello.unpack(hello.pack()) == hello
    assert len(hello.pack()) == 12 + len(hello.model_name)
    stats = Stats(steps=123, cycles=2**40 + 5, errors=7)
    assert Stats.unpack(stats.pack()) == stats and len(stats.pack()) == 16
    err = ErrorReply(ErrorCode.BAD_CRC, MsgType.STEP)
    assert ErrorReply.unpack(err.pack()) == err

    x = np.array([-32768, -1, 0, 1, 32767], np.int64)
    assert pack_step(x, 5) == np.array(x, "<i2").tobytes()
    np.testing.assert_array_equal(unpack_step(pack_step(x, 5), 5), x)
    xs = np.arange(-6, 6).reshape(4, 3)
    body = pack_run(xs, 3)
    assert body[:2] == b"\x04\x00" and len(body) == 2 + 4 * 3 * 2
    np.testing.assert_array_equal(unpack_run(body, 3), xs)
    ys = np.array([[-2**31, 2**31 - 1], [0, -5]], np.int32)
    np.testing.assert_array_equal(unpack_outputs(pack_outputs(ys), 2, 2), ys)


@pytest.mark.parametrize("unpack, body", [
    (Hello.unpack, Hello(1, 1, "abc", 2, 2, 64).pack()[:-1]),
    (Stats.unpack, bytes(15)),
    (ErrorReply.unpack, b"\x01"),
    (lambda b: unpack_step(b, 4), bytes(6)),
    (lambda b: unpack_run(b, 4), b"\x02\x00" + bytes(8)),
    (lambda b: unpack_run(b, 4), b"\x02"),
    (lambda b: unpack_outputs(b, 2, 3), bytes(20)),
])
def test_bodies_of_the_wrong_size_are_length_errors(unpack, body):
    with pytest.raises(LengthError):
        unpack(body)


@pytest.mark.parametrize("x", [np.zeros(4, np.float32), np.array([0, 0, 0, 40000]),
                               np.zeros(5, np.int16), np.zeros((1, 4), np.int16)])
def test_step_inputs_must_be_int16_of_the_model_width(x):
    with pytest.raises(InputError):
        pack_step(x, 4)


def test_run_chunks_fit_both_ways():
    assert run_chunk_steps(64, 10, 1024) == 7  # the reference network: input-bound
    assert run_chunk_steps(2, 200, 1024) == 1  # output-bound
    for n, m in [(64, 10), (2, 200), (1, 1), (512, 1), (1, 256)]:
        k = run_chunk_steps(n, m, MAX_BODY)
        assert 2 + 2 * k * n <= MAX_BODY and 4 * k * m <= MAX_BODY
        assert 2 + 2 * (k + 1) * n > MAX_BODY or 4 * (k + 1) * m > MAX_BODY or k == 0xFFFF


# ------------------------------------------------------------- Device on canned replies


class CannedPort:
    """A port whose device answers the n-th write with the n-th canned byte string."""

    def __init__(self, *answers: bytes):
        self.answers = list(answers)
        self.rx = bytearray()
        self.sent: list[bytes] = []
        self.timeout = None

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, n: int) -> bytes:
        if not self.rx:
            time.sleep(self.timeout)
        data = bytes(self.rx[:n])
        del self.rx[:n]
        return data

    def write(self, data: bytes) -> int:
        self.sent.append(data)
        if self.answers:
            self.rx += self.answers.pop(0)
        return len(data)

    def reset_input_buffer(self) -> None:
        self.rx.clear()

    def close(self) -> None:
        pass


HELLO_4_2 = encode_frame(MsgType.HELLO_REPLY, 1, Hello(1, 0xABCD, "canned", 4, 2, 64).pack())


def test_device_takes_only_the_reply_to_its_request():
    y = np.array([[5, -6]], np.int32)
    port = CannedPort(HELLO_4_2, b"".join([
        encode_frame(MsgType.STEP_REPLY, 1, pack_outputs(y + 1)),        # stale seq
        b"\x05\x01\x02\x00",                                              # corrupted
        encode_frame(MsgType.ERROR, 2, ErrorReply(ErrorCode.BAD_CRC, MsgType.RUN).pack()),
        encode_frame(MsgType.HELLO_REPLY, 2, b""),                        # wrong type
        encode_frame(MsgType.STEP_REPLY, 2, pack_outputs(y)),
    ]))
    dev = Device(port)
    assert dev.hello().model_name == "canned"
    np.testing.assert_array_equal(dev.step(np.array([1, 2, 3, 4])), y[0])
    assert dev.discarded == 3
    # each request starts with a delimiter and carries the next seq
    assert port.sent[1] == b"\x00" + encode_frame(MsgType.STEP, 2, pack_step(np.arange(1, 5), 4))


def test_device_errors_and_timeouts_are_clear():
    port = CannedPort(HELLO_4_2, encode_frame(
        MsgType.ERROR, 2, ErrorReply(ErrorCode.BAD_CRC, MsgType.STEP).pack()))
    dev = Device(port, timeout=0.2)
    dev.hello()
    with pytest.raises(DeviceError, match="BAD_CRC.*not executed") as info:
        dev.step(np.zeros(4, np.int16))
    assert info.value.code == ErrorCode.BAD_CRC
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match=r"no reply to STATS \(seq 3\) within 0.2 s"):
        dev.stats()
    assert time.monotonic() - t0 < 1.0
    old = encode_frame(MsgType.HELLO_REPLY, 1, Hello(2, 0, "x", 4, 2, 64).pack())
    with pytest.raises(ProtocolError, match="protocol 2"):
        Device(CannedPort(old)).hello()


def test_a_port_that_cannot_be_opened_is_a_protocol_error(tmp_path):
    pytest.importorskip("serial", reason="pyserial not installed (extra 'serial')")
    with pytest.raises(ProtocolError, match="cannot open serial port"):
        Device(str(tmp_path / "no-such-tty"))


def test_missing_pyserial_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(MissingExtraError, match=r"edgesnn\[serial\]"):
        Device("/dev/null")


# ------------------------------------------------------------ end to end: the C device

FIRMWARE = Path(str(files("edgesnn.firmware")))
needs_toolchain = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("make") is None,
    reason="building the host device needs gcc and make")


@contextmanager
def host_device(model, workdir: Path, *make_args: str):
    """Export ``model``, build firmware/host with it, run it; yields (Device, export info)."""
    info = export_c(model, workdir / "model")
    build = workdir / "build"
    done = subprocess.run(["make", "-C", str(FIRMWARE), "host", f"MODEL_DIR={workdir / 'model'}",
                           f"BUILD={build}", *make_args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    proc = subprocess.Popen([str(build / "edgesnn-device")], stdout=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path, "the device printed no pty path"
        with Device(path, timeout=2.0) as dev:
            yield dev, info
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def reference():
    return edgesnn.load_model(REFERENCE_MODEL)


@pytest.fixture(scope="module")
def served(reference, tmp_path_factory):
    """(Device, export_c's dict) of the reference network on the host device."""
    with host_device(reference, tmp_path_factory.mktemp("serial-device")) as served:
        yield served


@pytest.fixture
def device(served):
    return served[0]


class Reference:
    """The numpy-int reference of the model from a fresh state, stepped alongside the
    device."""

    def __init__(self, model):
        self.program = get_backend("numpy-int")(model)
        self.state = self.program.init_state(1)

    def step(self, x: np.ndarray) -> np.ndarray:
        y, self.state = self.program.step_int(self.state, np.asarray(x, np.int16)[None])
        return y[0]


def random_inputs(rng, steps: int, n: int) -> np.ndarray:
    """Moderate inputs (the model's working range) and full-range ones (saturation)."""
    scale = np.where(rng.random((steps, 1)) < 0.8, 6000, 32768)
    return np.clip(rng.normal(0, 1, (steps, n)) * scale, -32768, 32767).astype(np.int16)


@needs_toolchain
def test_hello_describes_the_exported_model(served, reference):
    device, exported = served
    assert device.hello() == Hello(
        protocol_version=1, model_id=int(exported["model_id"], 16),
        model_name=reference.metadata["name"], inputs=64, outputs=10, max_body=MAX_BODY)


@needs_toolchain
def test_steps_equal_numpy_int_bit_for_bit(device, reference):
    ref, rng = Reference(reference), np.random.default_rng(10)
    device.reset()
    for t, x in enumerate(random_inputs(rng, 300, 64)):
        np.testing.assert_array_equal(device.step(x), ref.step(x), err_msg=f"step {t}")


@needs_toolchain
def test_run_chunks_equal_numpy_int_and_continue_the_state(device, reference):
    ref, rng = Reference(reference), np.random.default_rng(11)
    device.reset()
    xs = random_inputs(rng, 200, 64)
    for x in xs[:13]:  # STEP then RUN then STEP: one state throughout
        np.testing.assert_array_equal(device.step(x), ref.step(x))
    ys = device.run(xs[13:150])  # 137 steps: 19 full chunks of 7 and one of 4
    np.testing.assert_array_equal(ys, np.stack([ref.step(x) for x in xs[13:150]]))
    for x in xs[150:]:
        np.testing.assert_array_equal(device.step(x), ref.step(x))
    assert device.run(xs[:0]).shape == (0, 10)


@needs_toolchain
def test_reset_restarts_the_model_and_stats_count_steps(device):
    xs = random_inputs(np.random.default_rng(12), 40, 64)
    device.reset()
    stats = device.stats()
    assert (stats.steps, stats.cycles) == (0, 0)
    first = device.run(xs)
    device.step(xs[0])
    stats = device.stats()
    assert stats.steps == 41 and stats.cycles > 0
    device.reset()
    np.testing.assert_array_equal(device.run(xs), first)
    assert device.stats().steps == 40


def exchange(port, data: bytes, count: int, timeout: float = 2.0) -> list[Frame]:
    """Write ``data``; read exactly ``count`` reply frames (the pty corrupts nothing)."""
    port.write(data)
    dec, frames = FrameDecoder(), []
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        assert time.monotonic() < deadline, f"{len(frames)} of {count} replies arrived"
        for item in dec.feed(port.read(max(1, port.in_waiting))):
            assert isinstance(item, Frame), item
            frames.append(item)
    assert len(frames) == count
    return frames


@needs_toolchain
@pytest.mark.parametrize("name", BAD_FRAMES)
def test_device_answers_each_bad_frame_with_its_error(device, name):
    wire, _, code = BAD_FRAMES[name]
    [err] = exchange(device.port, b"\x00" + wire, 1)
    request_type = 0x42 if name == "unknown type" else MsgType.STEP
    assert (err.msg_type, err.seq, ErrorReply.unpack(err.body)) == \
        (MsgType.ERROR, 7, ErrorReply(code, request_type))


@needs_toolchain
@pytest.mark.parametrize("msg_type, body, code", [
    (MsgType.HELLO, b"\x00", ErrorCode.BAD_LENGTH),
    (MsgType.RESET, b"\x01\x02", ErrorCode.BAD_LENGTH),
    (MsgType.STATS, b"\x01", ErrorCode.BAD_LENGTH),
    (MsgType.STEP, bytes(126), ErrorCode.BAD_LENGTH),
    (MsgType.STEP, bytes(130), ErrorCode.BAD_LENGTH),
    (MsgType.RUN, b"\x01", ErrorCode.BAD_LENGTH),
    (MsgType.RUN, b"\x02\x00" + bytes(128), ErrorCode.BAD_LENGTH),
    (MsgType.RUN, b"\x01\x00" + bytes(130), ErrorCode.BAD_LENGTH),  # bytes beyond k steps
    (MsgType.STEP_REPLY, bytes(40), ErrorCode.UNKNOWN_TYPE),  # the device takes requests only
])
def test_device_rejects_bodies_that_do_not_fit_the_type(device, msg_type, body, code):
    [err] = exchange(device.port, b"\x00" + encode_frame(msg_type, 0x4321, body), 1)
    assert err.seq == 0x4321 and ErrorReply.unpack(err.body) == ErrorReply(code, msg_type)


LONG_NAME = "wide-" + "0123456789" * 30


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """2 inputs → 600 outputs (RUN is output-bound) and a name over 255 bytes."""
    model = edgesnn.quantize(lif_mlp((2, 600)), reference_input(size=2, steps=50))
    model.metadata["name"] = LONG_NAME
    with host_device(model, tmp_path_factory.mktemp("serial-wide")) as (dev, _):
        yield dev, model


@needs_toolchain
def test_hello_name_is_cut_to_255_bytes(wide):
    # 256 non-zero bytes in a row (name length and name): the device's COBS encoder
    # must emit a full 0xFF block
    assert wide[0].hello().model_name == LONG_NAME[:255]


@needs_toolchain
def test_run_whose_reply_would_not_fit_is_too_large(wide):
    dev, model = wide
    assert run_chunk_steps(2, 600, dev.hello().max_body) == 1
    [err] = exchange(dev.port, b"\x00" + encode_frame(
        MsgType.RUN, 5, pack_run(np.zeros((2, 2), np.int16), 2)), 1)
    assert ErrorReply.unpack(err.body) == ErrorReply(ErrorCode.TOO_LARGE, MsgType.RUN)
    xs = random_inputs(np.random.default_rng(13), 9, 2)
    ref = Reference(model)
    dev.reset()
    np.testing.assert_array_equal(dev.run(xs), np.stack([ref.step(x) for x in xs]))
    assert dev.stats().steps == 9


ENCODER_HARNESS = r"""
#include <stdio.h>
#include "protocol.c" /* included, not linked: reaches the static encoder */

void platform_write(const uint8_t *data, size_t len) { fwrite(data, 1, len, stdout); }
uint32_t device_cycles(void) { return 0; }

int main(void) /* records of u16 length + bytes on stdin -> their frames on stdout */
{
    static uint8_t data[PROTOCOL_MAX_FRAME];
    uint8_t head[2];
    while (fread(head, 1, 2, stdin) == 2) {
        uint32_t n = get_u16(head);
        if (n > sizeof data || fread(data, 1, n, stdin) != n)
            return 1;
        write_cobs(data, n);
    }
    return 0;
}
"""


@needs_toolchain
def test_device_cobs_encoder_matches_python(served, tmp_path):
    """Replies rarely hold 253+ non-zero bytes in a row; the encoder's block boundaries
    are checked here directly, on runs around 254 and random data."""
    model_dir = Path(served[1]["dir"])
    (tmp_path / "harness.c").write_text(ENCODER_HARNESS)
    exe = tmp_path / "harness"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    f"-I{FIRMWARE / 'device'}", f"-I{model_dir}", "-o", str(exe),
                    str(tmp_path / "harness.c"), str(FIRMWARE / "device" / "crc32.c"),
                    str(model_dir / "model.c")], check=True)
    rng = np.random.default_rng(5)
    cases = []
    for n in (0, 1, 252, 253, 254, 255, 256, 507, 508, 509, MAX_FRAME - 1):
        run = b"\x7f" * n
        cases += [run, run + b"\x00", b"\x00" + run, run + b"\x00" + run, run + b"\x00\x00"]
    for _ in range(200):
        n = int(rng.integers(0, MAX_FRAME + 1))
        zeros = rng.random(n) < rng.choice([0.0, 0.002, 0.3])
        cases.append(np.where(zeros, 0, rng.integers(1, 256, n)).astype(np.uint8).tobytes())
    cases = [c for c in cases if len(c) <= MAX_FRAME]
    records = b"".join(len(c).to_bytes(2, "little") + c for c in cases)
    out = subprocess.run([str(exe)], input=records, capture_output=True, check=True).stdout
    assert out == b"".join(cobs_encode(c) + b"\x00" for c in cases)


@needs_toolchain
def test_a_device_with_a_smaller_max_body_gets_smaller_run_chunks(reference, tmp_path):
    with host_device(reference, tmp_path, "CPPFLAGS=-DPROTOCOL_MAX_BODY=256") as (dev, _):
        assert dev.hello().max_body == 256
        assert run_chunk_steps(64, 10, 256) == 1
        xs = random_inputs(np.random.default_rng(14), 5, 64)
        ref = Reference(reference)
        np.testing.assert_array_equal(dev.run(xs), np.stack([ref.step(x) for x in xs]))
        [err] = exchange(dev.port, b"\x00" + encode_frame(MsgType.RUN, 3, pack_run(xs[:2], 64)), 1)
        assert ErrorReply.unpack(err.body) == ErrorReply(ErrorCode.TOO_LARGE, MsgType.RUN)


# ---------------------------------------------------------------------------- fuzzing


def expected_errors(stream: bytes, inputs: int) -> list[tuple[int, int, int]]:
    """(seq, code, request type) of each ERROR the device must send for ``stream``, by
    protocol.py's checks plus the device's per-type body sizes (docs, checks 6-8)."""
    out = []
    for item in FrameDecoder().feed(stream):
        if isinstance(item, FrameError):
            out.append((item.seq, item.code, item.msg_type))
            continue
        body, t = item.body, item.msg_type
        sizes = {MsgType.HELLO: 0, MsgType.RESET: 0, MsgType.STATS: 0, MsgType.STEP: 2 * inputs}
        if t not in REQUESTS:
            code = ErrorCode.UNKNOWN_TYPE
        elif t == MsgType.RUN:
            k = int.from_bytes(body[:2], "little")
            assert len(body) != 2 + 2 * k * inputs, "the fuzz stream would run steps"
            code = ErrorCode.BAD_LENGTH
        else:
            assert len(body) != sizes[t], "the fuzz stream would execute a request"
            code = ErrorCode.BAD_LENGTH
        out.append((item.seq, code, t))
    return out


def bad_piece(rng, inputs: int) -> bytes:
    """One piece of junk for the line; a delimiter follows it most of the time."""
    seq = int(rng.integers(0x8000, 0x10000))  # the Device's seqs stay below this
    valid = encode_frame(MsgType.STEP, seq, pack_step(random_inputs(rng, 1, inputs)[0], inputs))
    body = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
    kind = int(rng.integers(10))
    if kind == 0:  # line noise, zeros included
        piece = rng.integers(0, 256, int(rng.integers(1, 80)), dtype=np.uint8).tobytes()
    elif kind == 1:  # one bit flipped anywhere in a valid frame
        piece = bytearray(valid[:-1])
        piece[int(rng.integers(len(piece)))] ^= 1 << int(rng.integers(8))
        piece = bytes(piece)
    elif kind == 2:  # cut short
        piece = valid[:int(rng.integers(1, len(valid) - 1))]
    elif kind == 3:  # oversized, up to three times the maximum
        big = rng.integers(0, 256, int(rng.integers(MAX_BODY + 1, 3 * MAX_BODY)), dtype=np.uint8)
        piece = cobs_encode(pack_payload(MsgType.STEP, seq, big.tobytes()))
    elif kind == 4:
        piece = cobs_encode(pack_payload(MsgType.HELLO, seq, version=int(rng.integers(2, 256))))
    elif kind == 5:  # any type that is not a request
        t = int(rng.choice(sorted(set(range(256)) - set(REQUESTS))))
        piece = cobs_encode(pack_payload(t, seq, body))
    elif kind == 6:  # a request with a body of the wrong size
        t = int(rng.choice(REQUESTS))
        if t == MsgType.RUN:  # k steps and a few bytes more or less than they need
            k = int(rng.integers(1, 8))
            body = k.to_bytes(2, "little") + bytes(2 * k * inputs + int(rng.choice([-2, -1, 1, 2])))
        piece = cobs_encode(pack_payload(t, seq, body if len(body) != 2 * inputs else body[1:]))
    elif kind == 7:  # length field disagrees with the frame, CRC correct
        payload = pack_payload(MsgType.STEP, seq, body)
        piece = cobs_encode(_relength(payload, (len(body) + int(rng.integers(1, 9))) % 65536))
    elif kind == 8:  # shorter than header + CRC
        short = rng.integers(0, 256, int(rng.integers(1, 10)), dtype=np.uint8)
        piece = cobs_encode(short.tobytes())
    else:  # a valid frame and a stray byte, no delimiter: runs into whatever comes next
        piece = valid[:-1] + bytes([int(rng.integers(1, 256))])
        return piece
    return piece + (b"\x00" if rng.random() < 0.85 else b"")


@needs_toolchain
def test_fuzz_junk_between_requests_never_breaks_the_device(device, reference):
    """~6,000 pieces of junk in 1,500 bursts, each followed by a valid request (RUN, STATS,
    RESET; every fifth through Device, which must skip the junk's answers itself). Every
    ERROR the device sends must be the one predicted, every request answered as by
    numpy-int."""
    rng, ref, port = np.random.default_rng(2024), Reference(reference), device.port
    device.reset()
    errors, steps, seq = device.stats().errors, 0, 0x4000  # Device's seqs stay below 0x4000
    for burst in range(1500):
        junk = b"".join(bad_piece(rng, 64) for _ in range(int(rng.integers(1, 8))))
        want = expected_errors(junk + b"\x00", 64)
        errors += len(want)
        xs = random_inputs(rng, int(rng.integers(1, 8)), 64)
        if burst % 5 == 4:
            device.stats()  # takes the sequence back from this test's own seqs (below)
            port.write(junk)  # Device's request starts with the delimiter that ends it
            np.testing.assert_array_equal(device.run(xs), np.stack([ref.step(x) for x in xs]))
            steps += len(xs)
            continue
        seq += 1
        if burst % 10 == 0:
            request, reply = MsgType.RESET, b""
            ref, steps = Reference(reference), 0
        elif burst % 10 == 5:
            request, reply = MsgType.STATS, None  # checked below: the cycles vary
        else:
            request, reply = MsgType.RUN, pack_outputs(np.stack([ref.step(x) for x in xs]))
            steps += len(xs)
        body = pack_run(xs, 64) if request == MsgType.RUN else b""
        *answers, last = exchange(port, junk + b"\x00" + encode_frame(request, seq, body),
                                  len(want) + 1)
        got = [(a.msg_type, a.seq, *astuple(ErrorReply.unpack(a.body))) for a in answers]
        assert got == [(MsgType.ERROR, *w) for w in want], f"burst {burst}"
        assert (last.msg_type, last.seq) == (request | REPLY, seq), f"burst {burst}"
        if reply is None:
            stats = Stats.unpack(last.body)
            assert (stats.steps, stats.errors) == (steps, errors), f"burst {burst}"
        else:
            assert last.body == reply, f"burst {burst}"
    stats = device.stats()
    assert (stats.steps, stats.errors) == (steps, errors)


@needs_toolchain
def test_steps_run_only_in_sequence(device, reference):
    """A STEP/RUN runs only with the seq after the last answered request's: a resent
    (duplicate) or skipped-over request is refused, not run; HELLO/RESET/STATS resync."""
    port, ref = device.port, Reference(reference)
    x = random_inputs(np.random.default_rng(4), 3, 64)

    def send(msg_type, seq, body=b""):
        [frame] = exchange(port, b"\x00" + encode_frame(msg_type, seq, body), 1)
        if frame.msg_type == MsgType.ERROR:
            return ErrorReply.unpack(frame.body).code
        return frame

    assert send(MsgType.RESET, 0x7000).msg_type == MsgType.RESET | REPLY
    first = send(MsgType.STEP, 0x7001, pack_step(x[0], 64))
    assert first.body == pack_outputs(ref.step(x[0])[None])
    assert send(MsgType.STEP, 0x7001, pack_step(x[1], 64)) == ErrorCode.OUT_OF_ORDER  # resent
    assert send(MsgType.RUN, 0x7003, pack_run(x[1:2], 64)) == ErrorCode.OUT_OF_ORDER  # gap
    stats = Stats.unpack(send(MsgType.STATS, 0x7100).body)
    assert stats.steps == 1  # neither refused request ran
    assert send(MsgType.STEP, 0x7101, pack_step(x[1], 64)).body == \
        pack_outputs(ref.step(x[1])[None])
    # Device's own seqs no longer follow: it is told, and a reset takes over
    with pytest.raises(DeviceError, match="OUT_OF_ORDER"):
        device.step(x[2])
    device.reset()
    np.testing.assert_array_equal(device.step(x[2]), Reference(reference).step(x[2]))
