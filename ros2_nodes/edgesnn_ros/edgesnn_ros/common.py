"""What every node shares: the ROS command line and parameter files, the transport,
typed parameters, refusing to start on a configuration error, and logging a
recurring problem once per episode.

Command line: the subset of ROS 2's that launch files and ``edgesnn launch`` use
(``USAGE``). Parameter files are ROS 2's: ``NODE: {ros__parameters: {...}}``. A key
is the node's fully qualified name (``/blimp/altitude_controller``, or nested
``/blimp: {altitude_controller: ...}``); a key without a leading slash is in the root
namespace (``blimp`` is the node /blimp, not /robot/blimp), and ``*`` (one name
token) and ``**`` (any number) are wildcards, as in rcl. ``-p`` values are YAML
scalars, as in ROS. Later files override earlier ones, ``-p`` overrides files.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesnn.errors import EdgesnnError
from edgesnn.ros.transport import Transport

_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn",
               "error": "error", "fatal": "error"}

USAGE = """usage: python -m edgesnn_ros.{node} [--params FILE.yaml]
    [--ros-args [-p NAME:=VALUE] [-r FROM:=TO] [-r __node:=NAME] [-r __ns:=/NS]
                [--params-file FILE.yaml] [--log-level LEVEL] [--]]"""


class ConfigurationError(EdgesnnError):
    """Unusable command-line arguments or parameters: the node does not start."""


@dataclass
class NodeArgs:
    name: str
    namespace: str = "/"
    params: dict[str, Any] = field(default_factory=dict)
    # parameters set only by wildcard sections of a parameter file (``/**``): those are
    # addressed to every node, so a node that does not declare one is not misconfigured
    broadcast: set[str] = field(default_factory=set)
    remappings: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"

    @property
    def fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}"


def parse_args(argv: Sequence[str], default_name: str) -> NodeArgs:
    """The node's name, namespace, parameters and remappings from ROS-style arguments."""
    args = NodeArgs(default_name)
    files: list[str] = []
    overrides: dict[str, Any] = {}
    ros, i = False, 0

    def value(flag: str) -> str:
        if i + 1 >= len(argv):
            raise ConfigurationError(f"{flag} needs a value")
        return argv[i + 1]

    while i < len(argv):
        a = argv[i]
        if a == "--ros-args" or (ros and a == "--"):
            ros, i = a == "--ros-args", i + 1
            continue
        if (ros and a == "--params-file") or (not ros and a == "--params"):
            files.append(value(a))
        elif ros and a in ("-p", "--param"):
            name, v = _assignment(value(a), a)
            overrides[name] = _scalar(v)
        elif ros and a in ("-r", "--remap"):
            source, target = _assignment(value(a), a)
            if source in ("__node", "__name"):
                args.name = target
            elif source == "__ns":
                args.namespace = target
            else:
                args.remappings[source] = target
        elif ros and a == "--log-level":
            level = value(a).lower()
            if level not in _LOG_LEVELS:
                raise ConfigurationError(f"--log-level takes one of {', '.join(_LOG_LEVELS)}, "
                                         f"not {value(a)!r}")
            args.log_level = _LOG_LEVELS[level]
        else:
            where = "ROS argument" if ros else "argument (ROS arguments follow --ros-args)"
            raise ConfigurationError(f"unknown {where}: {a!r}")
        i += 2
    specific: set[str] = set()
    for path in files:
        wildcard, named = file_parameters(path, args.fqn)
        args.params.update(wildcard)
        args.params.update(named)
        specific |= set(named)
    args.params.update(overrides)
    args.broadcast = set(args.params) - specific - set(overrides)
    return args


def _assignment(text: str, flag: str) -> tuple[str, str]:
    name, sep, v = text.partition(":=")
    if not sep or not name:
        raise ConfigurationError(f"{flag} takes NAME:=VALUE, not {text!r}")
    return name, v


def _scalar(text: str) -> Any:
    """A ``-p`` value as ROS reads it: YAML (``10`` int, ``10.0`` float, ``true`` bool)."""
    import yaml

    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if v is None else v


def file_parameters(path: str | Path, fqn: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters a ROS 2 parameter file gives the node ``fqn``: (from sections
    whose node name is a wildcard, from sections naming the node)."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such parameter file") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: a ROS 2 parameter file maps node names to "
                                 "{ros__parameters: {...}}")
    wildcard: dict[str, Any] = {}
    named: dict[str, Any] = {}
    node = fqn.strip("/").split("/")
    for pattern, values in _sections(doc, [], path):
        if _matches(pattern, node):
            (wildcard if pattern[-1] in ("*", "**") else named).update(values)
    return wildcard, named


def _sections(doc: dict, prefix: list[str], path: Path):
    """(node name pattern as tokens, flat parameters) of every ros__parameters section."""
    for key, v in doc.items():
        if key == "ros__parameters":
            if not prefix or not isinstance(v, dict):
                raise ConfigurationError(f"{path}: ros__parameters must be a mapping under a "
                                         "node name")
            yield prefix, dict(_flatten(v, ""))
        elif isinstance(v, dict):
            yield from _sections(v, prefix + [t for t in str(key).split("/") if t], path)
        else:
            raise ConfigurationError(f"{path}: {'/'.join(prefix + [str(key)])} is not under "
                                     "a ros__parameters section")


def _flatten(values: dict, prefix: str):
    """Nested parameter mappings as ROS's dotted names (``a: {b: 1}`` is ``a.b``)."""
    for key, v in values.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", v


def _matches(pattern: list[str], name: list[str]) -> bool:
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, name[k:]) for k in range(len(name) + 1))
    return bool(name) and head in ("*", name[0]) and _matches(rest, name[1:])


def make_transport(args: NodeArgs) -> Transport:
    """rclpy's when a ROS 2 installation is sourced, else the built-in DDS transport;
    both are built from the arguments as parsed here."""
    try:
        import rclpy  # noqa: F401 - only whether a ROS 2 installation is sourced
    except ImportError:
        from edgesnn.ros.dds import DdsTransport as transport_class
    else:
        from edgesnn.ros.rclpy_adapter import RclpyTransport as transport_class
    try:
        return transport_class(args.name, args.namespace, args.params,
                               remappings=args.remappings, log_level=args.log_level)
    except ValueError as exc:  # an invalid node name, namespace or remapping
        raise ConfigurationError(str(exc)) from None


def start(node_class: Callable[[Transport], Any], transport: Transport,
          broadcast: set[str] = frozenset()) -> Any:
    """The node, after checking that it declared every parameter it was given (a
    misspelt parameter would otherwise be silently ignored); then logs its ``summary``."""
    node = node_class(transport)
    unknown = [p for p in transport.unknown_params() if p not in broadcast]
    if unknown:
        raise ConfigurationError(f"unknown parameter(s) {', '.join(unknown)} for node "
                                 f"{transport.name} (--help lists the parameters)")
    transport.log("info", node.summary)
    return node


def run(node_class: Callable[[Transport], Any], default_name: str,
        argv: Sequence[str] | None = None) -> int:
    """A node's ``main``: parse the arguments, start the node and spin until Ctrl-C or
    the node's ``finished()``. Returns the exit status (1: refused to start).
    ``default_name`` is also the module's name in edgesnn_ros (the executable)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = f"python -m edgesnn_ros.{default_name}"
    if "-h" in argv or "--help" in argv:
        print(USAGE.format(node=default_name) + "\n")
        print(sys.modules[node_class.__module__].__doc__)
        return 0
    try:
        args = parse_args(argv, default_name)
        transport = make_transport(args)
    except EdgesnnError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            node = start(node_class, transport, args.broadcast)
        except EdgesnnError as exc:
            transport.log("error", f"not starting: {exc}")
            return 1
        transport.spin(until=getattr(node, "finished", None))
    except KeyboardInterrupt:
        pass
    finally:
        transport.close()
    return 0


# typed parameters: ROS parameters are typed, so a wrong type is refused at start-up


def text(t: Transport, name: str, default: str) -> str:
    v = t.param(name, default)
    if not isinstance(v, str):
        raise ConfigurationError(f"parameter {name} must be a string, got {v!r}")
    return v


def flag(t: Transport, name: str, default: bool) -> bool:
    v = t.param(name, default)
    if not isinstance(v, bool):
        raise ConfigurationError(f"parameter {name} must be true or false, got {v!r}")
    return v


def integer(t: Transport, name: str, default: int, minimum: int) -> int:
    v = t.param(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigurationError(f"parameter {name} must be an integer >= {minimum}, got {v!r}")
    return v


def number(t: Transport, name: str, default: float, positive: bool = False) -> float:
    """A finite float parameter; an integer value is taken too (``rate_hz: 10``)."""
    v = t.param(name, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (positive and v <= 0):
        kind = "a positive number" if positive else "a finite number"
        raise ConfigurationError(f"parameter {name} must be {kind}, got {v!r}")
    return float(v)


_SEVERITY = {"debug": 0, "info": 1, "warn": 2, "error": 3}


class Episodes:
    """Logs a recurring problem when it starts, when it gets more severe (a warning that
    becomes an error) and when it ends, not at every message (a 100 Hz sensor would
    flood the log); ``count`` is the length of the current episode."""

    def __init__(self, transport: Transport, unit: str):
        self._transport = transport
        self._unit = unit
        self._logged = "debug"  # the most severe level logged in this episode
        self.count = 0

    def problem(self, level: str, text: str) -> None:
        if not self.count or _SEVERITY[level] > _SEVERITY[self._logged]:
            self._transport.log(level, text)
            self._logged = level
        self.count += 1

    def ok(self, text: str) -> None:
        if self.count:
            self._transport.log("info", f"{text} (after {self.count} {self._unit})")
        self.count = 0
