"""Deployment report for the shipped models, in one table:

    python tools/mcu_report.py [--steps 2000]

- flash / RAM on a Cortex-M4: the model's own bytes (edgesnn export: const weights and
  parameters; state + scratch) and the whole firmware image (arm-none-eabi-size of the
  QEMU mps2-an386 build: model + serial protocol + start-up; its RAM includes the
  protocol's two 4 kB frame buffers);
- instructions per step: callgrind on the host build of the same C (x86-64, gcc -O2),
  counted inside model_step only;
- per-step latency, batch 1: the generated C natively (no Python), the ``c`` backend
  from Python (ctypes), numpy-int and numpy-float, and PyTorch where the model has a
  PyTorch form (the L2MU's training network; snnTorch for feed-forward LIF layers) —
  as ratios to numpy-int.

Needs gcc and make; arm-none-eabi-gcc + newlib for the image sizes and valgrind for the
instruction counts (columns show "-" without them).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import edgesnn
from edgesnn.bench import bench_model, snntorch_stepper, time_steps
from edgesnn.controllers.snn_controller import SHIPPED_I, SHIPPED_PD
from edgesnn.errors import EdgesnnError
from edgesnn.models.reference import L2MU_DEMO_MODEL, REFERENCE_MODEL, VPR_DEMO_MODEL
from edgesnn.serial.targets import build, image_size, missing_tools

MODELS = {"reference LIF 64-128-10": REFERENCE_MODEL, "L2MU (synthetic IMU)": L2MU_DEMO_MODEL,
          "SNN PD controller": SHIPPED_PD, "SNN I controller": SHIPPED_I,
          "VPR ensemble (24 places)": VPR_DEMO_MODEL}


def instructions_per_step(bench: Path, steps: int = 200) -> float | None:
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=model_step",
                        f"--callgrind-out-file={out}", str(bench), str(steps)],
                       check=True, capture_output=True)
        total = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
    return int(total.group(1)) / steps


def native_us_per_step(bench: Path) -> float:
    """Wall time per model_step of the host build, from two run lengths (so process
    start-up cancels out)."""
    def seconds(steps: int) -> float:
        start = time.perf_counter()
        subprocess.run([str(bench), str(steps)], check=True, capture_output=True)
        return time.perf_counter() - start

    short = 1000
    long = max(short * 4, int(short * 0.5 / max(seconds(short), 1e-3)))  # about half a second
    best = min(seconds(long) - seconds(short) for _ in range(3))
    return max(best, 0.0) / (long - short) * 1e6


def pytorch_us(model, steps: int) -> tuple[float, str] | None:
    """Median µs per step of the model's PyTorch form, if it has one here: the L2MU's
    training network, or snnTorch for feed-forward LIF layers."""
    try:
        if "l2mu" in model.metadata:
            from edgesnn.models.l2mu_train import torch_stepper
            step, label = torch_stepper(model)[1], "L2MU in PyTorch"
        else:
            step, label = snntorch_stepper(model.graph), "snnTorch"
    except (ImportError, EdgesnnError):
        return None
    n = model.graph.nodes[model.graph.inputs()[0]].size
    xs = np.random.default_rng(0).normal(size=(steps + 200, n)).astype(np.float32)
    return float(np.median(time_steps(step, xs, 200))) / 1e3, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per backend")
    args = parser.parse_args()
    arm = not missing_tools("qemu")
    rows = []
    for name, path in MODELS.items():
        model = edgesnn.load_model(path)
        with tempfile.TemporaryDirectory() as tmp:
            bench, info = build(model, "bench", Path(tmp) / "bench")
            image = image_size(build(model, "qemu", Path(tmp) / "mps2")[0]) if arm else None
            instructions = instructions_per_step(bench)
            native = native_us_per_step(bench)
        timed = {r.backend: r.median_us for r in bench_model(
            model, ["c", "numpy-int", "numpy-float"], steps=args.steps, compare_snntorch=False)}
        rows.append((name, info, image, instructions, native, timed, pytorch_us(model, args.steps)))
        print(f"measured {name}", flush=True)

    table = [["model", "flash B", "RAM B", "instr/step", "C native µs", "c (ctypes)", "numpy-int",
              "numpy-float", "PyTorch"]]
    for name, info, image, instructions, native, timed, torch in rows:
        model_ram = info["state_bytes"] + info["scratch_bytes"]
        base = timed["numpy-int"]
        table.append([
            name,
            f"{info['flash_bytes']:,} / " + (f"{image['flash']:,}" if image else "-"),
            f"{model_ram:,} / " + (f"{image['ram']:,}" if image else "-"),
            f"{instructions:,.0f}" if instructions else "-",
            f"{native:.2f} ({base / native:,.0f}×)",
            f"{timed['c']:.1f} ({base / timed['c']:.1f}×)",
            f"{base:.1f} (1×)",
            f"{timed['numpy-float']:.1f} ({base / timed['numpy-float']:.1f}×)",
            "-" if torch is None else f"{torch[0]:.0f} ({base / torch[0]:.2f}×) {torch[1]}",
        ])
    widths = [max(len(r[k]) for r in table) for k in range(len(table[0]))]
    print("\nCortex-M4 bytes (model alone / whole firmware image) and cost per step (batch 1)")
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    print("\nµs per step; (n×) = speed relative to numpy-int. instr/step: x86-64 host build under "
          "callgrind. RAM of the model = state + scratch; the image adds the serial protocol.")


if __name__ == "__main__":
    main()
