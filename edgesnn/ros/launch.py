"""``edgesnn launch STACK.yaml``: start the nodes of a stack description as processes on
the built-in DDS transport, for machines without ROS (launch/stack.yaml; the ROS 2
launch files in launch/ read the same file).

Each node runs as ``python -m edgesnn_ros.<executable>`` with the ROS command-line
conventions (``--ros-args -r __node:=… -r __ns:=… --params-file … -r from:=to``), with
``CYCLONEDDS_URI`` set to the loopback configuration unless the caller set one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from edgesnn.errors import DataError
from edgesnn.ros.dds import loopback_config

EXECUTABLES = ("blimp", "altitude_controller", "imu_activity", "place_recognition", "replay")
_NODE_KEYS = {"executable", "name", "namespace", "remappings"}


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    namespace: str = "/"
    remappings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stack:
    nodes: list[NodeSpec]
    parameters: Path | None  # a ROS 2 parameter file


def load_stack(path: str | Path) -> Stack:
    """The stack description, checked; DataError naming what is wrong."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such stack file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("nodes"), list) or not spec["nodes"]:
        raise DataError(f"{path}: needs a list 'nodes' (and optionally 'parameters')")
    unknown = set(spec) - {"nodes", "parameters"}
    if unknown:
        raise DataError(f"{path}: unknown keys {sorted(unknown)}")
    params = None
    if spec.get("parameters"):
        params = (path.parent / spec["parameters"]).resolve()
        if not params.is_file():
            raise DataError(f"{path}: parameter file {params} not found")
    nodes, names = [], set()
    for i, node in enumerate(spec["nodes"]):
        where = f"{path}: node {i + 1}"
        if not isinstance(node, dict) or set(node) - _NODE_KEYS or "executable" not in node:
            raise DataError(f"{where}: needs 'executable' and only {sorted(_NODE_KEYS)}")
        if node["executable"] not in EXECUTABLES:
            raise DataError(f"{where}: unknown executable {node['executable']!r}; "
                            f"known: {', '.join(EXECUTABLES)}")
        spec_node = NodeSpec(node["executable"], str(node.get("name", node["executable"])),
                             str(node.get("namespace", "/")),
                             {str(k): str(v) for k, v in (node.get("remappings") or {}).items()})
        full = f"{spec_node.namespace.rstrip('/')}/{spec_node.name}"
        if full in names:
            raise DataError(f"{where}: a second node named {full}")
        names.add(full)
        nodes.append(spec_node)
    return Stack(nodes, params)


def node_command(node: NodeSpec, parameters: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", f"edgesnn_ros.{node.executable}", "--ros-args",
           "-r", f"__node:={node.name}", "-r", f"__ns:={node.namespace}"]
    if parameters is not None:
        cmd += ["--params-file", str(parameters)]
    for source, target in node.remappings.items():
        cmd += ["-r", f"{source}:={target}"]
    return cmd


def _forward(name: str, stream, sink) -> None:
    for line in stream:
        sink(f"[{name}] {line}")


class Running:
    """The processes of a started stack."""

    def __init__(self, stack: Stack, sink):
        env = dict(os.environ)
        env.setdefault("CYCLONEDDS_URI", loopback_config())
        self.procs = []
        for node in stack.nodes:
            proc = subprocess.Popen(node_command(node, stack.parameters), env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            threading.Thread(target=_forward, args=(node.name, proc.stdout, sink),
                             daemon=True).start()
            self.procs.append((node, proc))

    def failed(self) -> str | None:
        """A node that has exited with an error (None while none has). A node may end
        normally (a replay played once): that is not a failure."""
        return next((f"{n.name} (exit code {p.returncode})" for n, p in self.procs
                     if p.poll() not in (None, 0)), None)

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def run_in_background(stack: Stack) -> Iterator[Running]:
    """Start the stack; its output is kept and printed only if a node exits early."""
    lines: list[str] = []
    running = Running(stack, lines.append)
    try:
        yield running
    finally:
        running.stop()
        if running.failed() is not None:
            sys.stderr.write("".join(lines[-40:]))


def run(stack: Stack, duration_s: float | None = None, out=sys.stdout) -> int:
    """Start every node, forward their output prefixed with the node name, and stop
    them all on Ctrl-C, after ``duration_s``, or when one fails (its code is returned)."""
    def sink(line: str) -> None:
        out.write(line)
        out.flush()

    running = Running(stack, sink)
    try:
        end = None if duration_s is None else time.monotonic() + duration_s
        while end is None or time.monotonic() < end:
            for node, proc in running.procs:
                if proc.poll() not in (None, 0):
                    out.write(f"[launch] {node.name} exited with code {proc.returncode}\n")
                    return proc.returncode
            time.sleep(0.1)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        running.stop()
