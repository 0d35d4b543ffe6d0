"""The Transport of transport.py on Cyclone DDS, without a ROS install, on the wire
conventions of rmw_cyclonedds, so these nodes and ROS 2 nodes see each other's topics:

* one DomainParticipant per node, domain ``ROS_DOMAIN_ID`` (0 when unset);
* topic ``/robot/imu`` is the DDS topic ``rt/robot/imu``; relative names resolve under
  the node's namespace, ``~/x`` under the node (``/robot/node/x``), as in ROS;
* the types of msgs.py (DDS type names ``pkg::msg::dds_::Type_``, XCDR1, final);
* QoS profiles: reliability and keep-last depth as given, volatile durability.

Everything a node sees happens in ``spin()``, in the calling thread: timers, and the
samples taken from the readers after a WaitSet wake-up. Nothing is called back from a
DDS thread, so node logic needs no locks. An exception in a callback is logged and
spinning goes on, as does a sample that does not deserialize; a publisher or
subscriber that cannot match (another type on the same topic, incompatible QoS) is
logged once per occurrence.

``edgesnn demo`` and the tests keep DDS on the loopback interface (``loopback()``):
see docs/ros2.md for why and for the configuration.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# msgs first: it fails naming the extra when cyclonedds is missing
from edgesnn.ros.msgs import dds_to_ros_type_name, ros_type_name
from edgesnn.ros.transport import DEFAULT, QoS, Reliability

from cyclonedds.builtin import (BuiltinDataReader, BuiltinTopicDcpsPublication,
                                BuiltinTopicDcpsSubscription)
from cyclonedds.core import (DDSStatus, InstanceState, Qos, ReadCondition, SampleState,
                             ViewState, WaitSet)
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

# Discovery by unicast to 127.0.0.1 only: Linux's loopback interface has no MULTICAST
# flag, so Cyclone's default SPDP multicast finds nobody there. Peers on the same host
# are found on the ports of the participant indices up to MaxAutoParticipantIndex; an
# index belongs to a process (its DDS instance, whatever its participants), and 20 is
# the measured limit: a 21st process of one domain fails to create a participant.
_LOOPBACK_CONFIG = (
    '<CycloneDDS><Domain Id="any"><General>'
    '<Interfaces><NetworkInterface address="127.0.0.1"/></Interfaces>'
    '<AllowMulticast>false</AllowMulticast></General>'
    '<Discovery><ParticipantIndex>auto</ParticipantIndex>'
    '<MaxAutoParticipantIndex>20</MaxAutoParticipantIndex>'
    '<Peers><Peer address="127.0.0.1"/></Peers></Discovery></Domain></CycloneDDS>'
)


def loopback_config() -> str:
    """A CYCLONEDDS_URI value that keeps DDS on 127.0.0.1 with unicast discovery."""
    return _LOOPBACK_CONFIG


def loopback_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default ``os.environ``) with CYCLONEDDS_URI on loopback, for a child
    process: ``subprocess.run(cmd, env=loopback_env())``."""
    return {**(os.environ if env is None else env), "CYCLONEDDS_URI": _LOOPBACK_CONFIG}


@contextmanager
def loopback() -> Iterator[None]:
    """Keep DDS on loopback inside the block: for transports created in it (Cyclone
    reads CYCLONEDDS_URI when a process's first participant of a domain is created)
    and for child processes started in it. Restores the previous value after."""
    previous = os.environ.get("CYCLONEDDS_URI")
    os.environ["CYCLONEDDS_URI"] = _LOOPBACK_CONFIG
    try:
        yield
    finally:
        if previous is None:
            del os.environ["CYCLONEDDS_URI"]
        else:
            os.environ["CYCLONEDDS_URI"] = previous


# ROS name rules (rcl): tokens of letters, digits and underscores, not starting with a
# digit, separated by single slashes; "~" (the node's own namespace) only in front.
_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^(~(/{_TOKEN})*|/?{_TOKEN}(/{_TOKEN})*)$")
_NAMESPACE = re.compile(rf"^(/{_TOKEN})*$")


def _normalize_namespace(namespace: str) -> str:
    ns = "/" + namespace.strip("/")  # launch files accept "robot" and "/robot/"
    if not _NAMESPACE.match(ns.rstrip("/")):
        raise ValueError(f"invalid ROS namespace {namespace!r}")
    return ns


def resolve_name(name: str, namespace: str, node: str) -> str:
    """The fully qualified ROS name: ``imu`` in ``/robot`` → ``/robot/imu``; ``/imu``
    stays; ``~/state`` of node ``n`` in ``/robot`` → ``/robot/n/state``."""
    if not _NAME.match(name):
        raise ValueError(f"invalid ROS topic name {name!r}")
    ns = namespace.rstrip("/")
    if name.startswith("~"):
        return f"{ns}/{node}{name[1:]}"
    if name.startswith("/"):
        return name
    return f"{ns}/{name}"


def dds_topic_name(resolved: str) -> str:
    """rmw_cyclonedds' DDS topic of a ROS topic: ``/robot/imu`` → ``rt/robot/imu``."""
    return "rt" + resolved


# Reader history is at least this deep whatever the profile's depth: a keep-last-5
# (sensor data) reader lost 15 of 200 IMU samples at 200 Hz when a callback took 50 ms
# four times; at 100, none. The depth is a local buffer, not part of QoS matching, so
# this only changes how much of a burst survives a slow callback (0.5 s at 200 Hz).
READER_MIN_DEPTH = 100

# A reliable writer with a full history blocks write() at most this long (then the call
# raises a DDS timeout, which publish() logs) - the Cyclone default.
_MAX_BLOCKING = duration(milliseconds=100)

# spin() re-checks `until` and its deadline at least this often
_MAX_WAIT_S = 0.05

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


def _level(name: str) -> int:
    if name not in _LEVELS:
        raise ValueError(f"log level {name!r}: one of {', '.join(_LEVELS)}")
    return _LEVELS[name]


# DDS QoS policy ids (dds_public_qosdefs.h) of the incompatibilities worth naming
_POLICY_NAMES = {2: "durability", 4: "deadline", 8: "liveliness", 11: "reliability",
                 12: "destination order", 24: "type", 25: "data representation"}
_TYPE_CONSISTENCY = 24


def _dds_qos(qos: QoS, depth: int) -> Qos:
    reliability = (Policy.Reliability.Reliable(max_blocking_time=_MAX_BLOCKING)
                   if qos.reliability is Reliability.RELIABLE else Policy.Reliability.BestEffort)
    return Qos(reliability, Policy.History.KeepLast(depth), Policy.Durability.Volatile,
               # ROS 2 (rmw_cyclonedds) sends and accepts XCDR1 only
               Policy.DataRepresentation(use_cdrv0_representation=True))


class DdsPublisher:
    def __init__(self, transport: DdsTransport, topic: str, writer: DataWriter):
        self._transport = transport
        self.topic = topic
        self._writer = writer

    def publish(self, msg: Any) -> None:
        """Errors (wrong message type, a full reliable history) are logged, not raised:
        a node keeps running."""
        if not isinstance(msg, self._writer.topic.data_type):
            self._transport.log("error", f"publish on {self.topic}: a {type(msg).__name__}, "
                                f"the topic carries {self._writer.topic.data_type.__name__}")
            return
        try:
            self._writer.write(msg)
        except Exception as e:  # noqa: BLE001 - DDS and serialization errors alike
            self._transport.log("error", f"publish on {self.topic}: {e}")

    def get_subscription_count(self) -> int:
        """Matched subscriptions (as rclpy's Publisher), e.g. to wait for a subscriber."""
        return self._writer.get_publication_matched_status().current_count


@dataclass
class _Subscription:
    topic: str
    reader: DataReader
    condition: ReadCondition
    callback: Callable[[Any], None]


@dataclass
class _Timer:
    period_s: float
    due: float  # time.monotonic()
    callback: Callable[[], None]


class DdsTransport:
    """A ROS 2 node's view of DDS (see the module docstring). ``params`` are the node's
    ROS parameters; ``remappings`` map topic names to others as ROS remapping rules
    (both sides resolved in the namespace); ``domain_id`` defaults to ROS_DOMAIN_ID."""

    def __init__(self, name: str, namespace: str = "/", params: Mapping[str, Any] | None = None,
                 domain_id: int | None = None, remappings: Mapping[str, str] | None = None,
                 log_level: str = "info"):
        if not re.fullmatch(_TOKEN, name):
            raise ValueError(f"invalid ROS node name {name!r}")
        self.name = name
        self.namespace = _normalize_namespace(namespace)
        self._params = dict(params or {})
        self._declared: set[str] = set()
        self._log_level = _level(log_level)
        self._remap = {resolve_name(k, self.namespace, name): resolve_name(v, self.namespace, name)
                       for k, v in (remappings or {}).items()}
        if domain_id is None:
            domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self._participant = DomainParticipant(domain_id)
        self._waitset = WaitSet(self._participant)
        self._topics: dict[str, Topic] = {}
        self._writers: list[tuple[str, DataWriter]] = []
        self._subscriptions: list[_Subscription] = []
        self._timers: list[_Timer] = []
        self._builtin: dict[Any, BuiltinDataReader] = {}
        self._closed = False

    # names

    def resolve(self, topic: str) -> str:
        """The fully qualified name of a topic of this node, after remapping."""
        resolved = resolve_name(topic, self.namespace, self.name)
        return self._remap.get(resolved, resolved)

    def _topic(self, resolved: str, msg_type: type) -> Topic:
        topic = self._topics.get(resolved)
        if topic is None:
            topic = self._topics[resolved] = Topic(self._participant, dds_topic_name(resolved),
                                                   msg_type)
        elif topic.data_type is not msg_type:
            # a bug in the node's own code, found at start-up: refuse it
            raise TypeError(f"{resolved} is already used with {topic.data_type.__name__} "
                            f"in node {self.name}, not {msg_type.__name__}")
        return topic

    # Transport

    def publisher(self, topic: str, msg_type: type, qos: QoS = DEFAULT) -> DdsPublisher:
        resolved = self.resolve(topic)
        writer = DataWriter(self._participant, self._topic(resolved, msg_type),
                            _dds_qos(qos, qos.depth))
        self._writers.append((resolved, writer))
        return DdsPublisher(self, resolved, writer)

    def subscribe(self, topic: str, msg_type: type, callback: Callable[[Any], None],
                  qos: QoS = DEFAULT) -> None:
        resolved = self.resolve(topic)
        reader = DataReader(self._participant, self._topic(resolved, msg_type),
                            _dds_qos(qos, max(qos.depth, READER_MIN_DEPTH)))
        condition = ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any)
        self._waitset.attach(condition)
        self._subscriptions.append(_Subscription(resolved, reader, condition, callback))

    def timer(self, period_s: float, callback: Callable[[], None]) -> None:
        if not period_s > 0:
            raise ValueError(f"timer period must be > 0 s, not {period_s}")
        self._timers.append(_Timer(period_s, time.monotonic() + period_s, callback))

    def now(self) -> float:
        return time.time()

    def log(self, level: str, text: str) -> None:
        if _level(level) >= self._log_level:
            print(f"[{level.upper()}] [{self.name}]: {text}", file=sys.stderr, flush=True)

    def param(self, name: str, default: Any) -> Any:
        self._declared.add(name)
        return self._params.get(name, default)

    def unknown_params(self) -> list[str]:
        """Parameters given to the node that it never declared (read with ``param``)."""
        return sorted(set(self._params) - self._declared)

    def spin(self, until: Callable[[], bool] | None = None,
             timeout_s: float | None = None) -> None:
        """Run timers and subscription callbacks until ``until()`` is true, ``timeout_s``
        has passed or the transport is closed."""
        deadline = math.inf if timeout_s is None else time.monotonic() + timeout_s
        while not self._closed and not (until is not None and until()):
            now = time.monotonic()
            if now >= deadline:
                return
            next_due = self._run_timers(now)
            wait_s = min(next_due, deadline, now + _MAX_WAIT_S) - time.monotonic()
            if wait_s > 0:
                self._waitset.wait(int(wait_s * 1e9))
            self._take_all()
            self._check_matching()

    def close(self) -> None:
        """Leave the domain: the participant and everything in it are deleted."""
        if self._closed:
            return
        self._closed = True
        self._subscriptions.clear()
        self._writers.clear()
        self._topics.clear()
        self._builtin.clear()
        self._timers.clear()
        # Deleting the participant deletes everything in it, even entities the node still
        # holds (its publishers then log an error). cyclonedds has no public delete:
        # Entity.__del__ is it, and it does nothing when the object is collected later.
        self._participant.__del__()

    # spin internals

    def _run_timers(self, now: float) -> float:
        """Call the due timers; return when the next one is due."""
        for t in self._timers:
            if t.due <= now:
                # skip missed periods rather than calling back in a burst (as rclpy)
                t.due += t.period_s * (math.floor((now - t.due) / t.period_s) + 1)
                self._call(t.callback, (), "timer")
        return min((t.due for t in self._timers), default=math.inf)

    def _take_all(self) -> None:
        for s in self._subscriptions:
            # one sample per take: a sample that fails to deserialize costs only itself
            while not self._closed:
                try:
                    samples = s.reader.take(N=1, condition=s.condition)
                except Exception as e:  # noqa: BLE001 - malformed data from a remote writer
                    self.log("error", f"dropped a sample on {s.topic}: {e}")
                    break  # the rest at the next wake-up, which is immediate
                if not samples:
                    break
                # samples without data only report a writer's disappearance
                if samples[0].sample_info.valid_data:
                    self._call(s.callback, (samples[0],), f"callback on {s.topic}")

    def _call(self, callback: Callable, args: tuple, what: str) -> None:
        try:
            callback(*args)
        except Exception as e:  # noqa: BLE001 - a node keeps running on bad input
            self.log("error", f"{what} raised {type(e).__name__}: {e}")

    def _check_matching(self) -> None:
        for s in self._subscriptions:
            if s.reader.take_status(DDSStatus.RequestedIncompatibleQos):
                status = s.reader.get_requested_incompatible_qos_status()
                self._log_unmatched(s.topic, s.reader.topic.data_type, "publisher",
                                    status.last_policy_id)
        for topic, writer in self._writers:
            if writer.take_status(DDSStatus.OfferedIncompatibleQos):
                status = writer.get_offered_incompatible_qos_status()
                self._log_unmatched(topic, writer.topic.data_type, "subscriber",
                                    status.last_policy_id)

    def _log_unmatched(self, topic: str, msg_type: type, peer: str, policy_id: int) -> None:
        ours = ros_type_name(msg_type)
        if policy_id != _TYPE_CONSISTENCY:
            policy = _POLICY_NAMES.get(policy_id, f"policy {policy_id}")
            self.log("warn", f"a {peer} on {topic} has incompatible QoS ({policy}); "
                     "no messages pass between it and this node")
            return
        remote = self._remote_types(topic, peer)
        if remote - {ours}:
            other = "of " + ", ".join(sorted(remote - {ours}))
        elif ours in remote:
            other = "of the same type name but another definition"
        else:  # it has left already
            other = "of another type"
        self.log("warn", f"type mismatch on {topic}: a {peer} {other}, this node uses {ours}; "
                 "no messages pass between it and this node")

    def _remote_types(self, topic: str, peer: str) -> set[str]:
        """The ROS types of the remote publishers or subscribers of a topic, from DDS
        discovery data (read, not taken: the builtin readers mirror discovery)."""
        builtin_topic = (BuiltinTopicDcpsPublication if peer == "publisher"
                         else BuiltinTopicDcpsSubscription)
        if builtin_topic not in self._builtin:
            self._builtin[builtin_topic] = BuiltinDataReader(self._participant, builtin_topic)
        endpoints = self._builtin[builtin_topic].read(N=1000)
        return {dds_to_ros_type_name(e.type_name) for e in endpoints
                if e.topic_name == dds_topic_name(topic)}
