"""``edgesnn hil``: a model on a device (serial port, host build or QEMU) in the loop."""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edgesnn.cli.control_commands import SCHEDULE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hil", help="run a model on a device over the serial protocol, beside numpy-int",
        description="Hardware in the loop. The device must run the firmware built from MODEL "
                    "(its model id is checked). --port host or qemu builds that firmware and starts "
                    "it here: a POSIX process, or the Cortex-M4 image on QEMU's mps2-an386 (needs "
                    "gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm). With --input, "
                    "each sequence runs from a reset on the device and on numpy-int, and the "
                    "outputs must be equal. Without --input, a controller model flies the "
                    "simulated blimp from the device, step by step over the serial line.",
        epilog="examples: edgesnn hil --port qemu edgesnn/assets/snn-pd-lif.esnn\n"
               "          edgesnn hil --port /dev/ttyACM0 model.esnn --input x.npz")
    p.add_argument("model", type=Path, help="quantized model file (.esnn)")
    p.add_argument("--port", required=True,
                   help="serial port path, or 'host' / 'qemu' to build and start a device here")
    p.add_argument("--input", "-i", type=Path, help="input sequences (.npz 'x' or .csv)")
    p.add_argument("--output", "-o", type=Path, help="write the device's outputs (.npz or .csv)")
    p.add_argument("--schedule", default=SCHEDULE, help=f"flight set-points in m ({SCHEDULE})")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per set-point (20)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply (5)")
    p.set_defaults(func=cmd_hil)


def cmd_hil(args) -> int:
    from edgesnn.errors import InputError
    from edgesnn.modelfile import load_model
    from edgesnn.serial.hil import DeviceModel
    from edgesnn.serial.host import Device
    from edgesnn.serial.targets import TARGETS, serve

    model = load_model(args.model)
    with ExitStack() as stack:
        port = args.port
        if port in TARGETS:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="edgesnn-hil-"))
            port, info = stack.enter_context(serve(model, args.port, workdir))
            print(f"started the {args.port} device on {port} (flash {info['flash_bytes']:,} B "
                  f"of model data)")
        device = stack.enter_context(Device(port, timeout=args.timeout))
        on_device = DeviceModel(device, model)
        hello = device.info
        print(f"device: {hello.model_name} (id 0x{hello.model_id:08x}), {hello.inputs} inputs, "
              f"{hello.outputs} outputs, frames up to {hello.max_body} B")
        if args.input:
            return _compare_sequences(on_device, model, args)
        if "controller" not in model.metadata:
            raise InputError("give --input sequences (only controller models fly without them)")
        return _fly(on_device, model, args)


def _compare_sequences(on_device, model, args) -> int:
    from edgesnn.backends import get_backend
    from edgesnn.io import load_sequences, save_sequences

    xs = load_sequences(args.input)
    xs = xs[None] if xs.ndim == 2 else xs
    reference = get_backend("numpy-int")(model)
    ys, same, start = [], True, time.perf_counter()
    for x in xs:
        on_device.reset()
        y = on_device.run(x)
        ref, _ = reference.run(reference.init_state(), x)
        same &= bool(np.array_equal(y, ref))
        ys.append(y)
    seconds = time.perf_counter() - start
    stats = on_device.device.stats()
    steps = xs.shape[0] * xs.shape[1]
    print(f"ran {xs.shape[0]} sequence(s) x {xs.shape[1]} steps on the device in {seconds:.2f} s "
          f"({steps / seconds:,.0f} steps/s over the line); device: {stats.steps} steps since "
          f"reset, {stats.errors} error replies")
    print("outputs equal to numpy-int: " + ("yes, every step" if same else "NO"))
    if args.output:
        save_sequences(args.output, np.stack(ys) if len(ys) > 1 else ys[0])
        print(f"wrote {args.output}")
    return 0 if same else 1


def _fly(on_device, model, args) -> int:
    from edgesnn.cli.control_commands import _format_rows, _schedule
    from edgesnn.controllers.closed_loop import fly, setpoint_schedule, summarize
    from edgesnn.controllers.plants import PhysicalBlimp
    from edgesnn.controllers.snn_controller import SNNController

    setpoints = setpoint_schedule(_schedule(args.schedule), args.seconds, PhysicalBlimp().dt)
    start = time.perf_counter()
    flight = fly(PhysicalBlimp(), on_device, setpoints)
    seconds = time.perf_counter() - start
    reference = fly(PhysicalBlimp(), SNNController([model], "numpy-int"), setpoints)
    name = model.metadata.get("name", "controller")
    print(_format_rows([{"controller": f"{name} on the device"} | summarize(flight),
                        {"controller": f"{name} on numpy-int"} | summarize(reference)]))
    same = bool(np.array_equal(flight.command, reference.command))
    print(f"{setpoints.size} control steps over the serial line in {seconds:.2f} s "
          f"({seconds / setpoints.size * 1e3:.2f} ms per step round trip); commands equal to "
          "numpy-int: " + ("yes, every step" if same else "NO"))
    return 0 if same else 1
