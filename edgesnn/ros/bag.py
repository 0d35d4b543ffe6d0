"""rosbag2 files (MCAP storage) without ROS, through ``rosbags``: record the messages of
edgesnn.ros.msgs and replay them. A bag is written as Jazzy's rosbag2 writes it, and a
bag recorded by ROS 2 reads here, for the message types that msgs.py defines (neither
tried against a ROS install: there is none here).

    write_bag("run1", [("/imu", Imu(...), t_ns), ...])   # creates the directory run1/
    for topic, msg, t_ns in read_bag("run1"): ...        # a bag directory or a .mcap file

The CDR bytes in the bag are those rosbags serializes, which equal what the DDS
transport sends (tests/test_ros_wire.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from edgesnn.ros.msgs import BY_ROS_NAME, EDGESNN_MSG_DEFINITIONS, IdlStruct, ros_type_name

# Jazzy: the ROS 2 LTS whose message definitions (and type hashes) the bag declares;
# the message types used here are the same in Humble and later.
STORE = Stores.ROS2_JAZZY
BAG_VERSION = 9  # rosbag2 metadata version of Jazzy; older releases may refuse it

# rosbags wants numpy arrays of the declared dtype for arrays of primitives
_DTYPES = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8,
           "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
           "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
           "float32": np.float32, "float64": np.float64}


@cache
def typestore() -> Typestore:
    """The ROS 2 type store with the edgesnn_msgs types registered from their .msg text."""
    store = get_typestore(STORE)
    for name, text in EDGESNN_MSG_DEFINITIONS.items():
        store.register(get_types_from_msg(text, name))
    return store


def to_rosbags(msg: IdlStruct, store: Typestore | None = None) -> Any:
    """A message of msgs.py as the rosbags message object of the same ROS type."""
    store = store or typestore()
    name = ros_type_name(type(msg))
    values = {}
    for field, (kind, spec) in store.fielddefs[name][1]:
        values[field] = _to_rosbags_value(getattr(msg, field), kind.name, spec, store)
    return store.types[name](**values)


def _to_rosbags_value(value: Any, kind: str, spec: Any, store: Typestore) -> Any:
    if kind == "NAME":
        return to_rosbags(value, store)
    if kind in ("ARRAY", "SEQUENCE"):
        (sub_kind, sub_spec), _length = spec
        if sub_kind.name == "BASE" and sub_spec[0] in _DTYPES:
            data = np.frombuffer(value, np.uint8) if isinstance(value, bytes) else value
            return np.asarray(data, dtype=_DTYPES[sub_spec[0]])
        return [_to_rosbags_value(v, sub_kind.name, sub_spec, store) for v in value]
    return value


def from_rosbags(obj: Any) -> IdlStruct:
    """A rosbags message object as the dataclass of msgs.py (KeyError: no such class)."""
    cls = BY_ROS_NAME[obj.__msgtype__]
    return cls(**{f: _from_rosbags_value(getattr(obj, f)) for f in cls.__dataclass_fields__})


def _from_rosbags_value(value: Any) -> Any:
    if hasattr(value, "__msgtype__"):
        return from_rosbags(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_from_rosbags_value(v) for v in value]
    return value


def write_bag(path: str | Path, messages: Iterable[tuple[str, IdlStruct, int]]) -> None:
    """Write (topic, message, receive time in ns) to a new rosbag2 directory with MCAP
    storage. Topics are ROS names; a relative name is stored as absolute (rosbag2
    stores fully qualified names). Refuses to overwrite an existing path."""
    store = typestore()
    with Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msg, t_ns in messages:
            topic = topic if topic.startswith("/") else "/" + topic
            msgtype = ros_type_name(type(msg))
            if (topic, msgtype) not in connections:
                connections[topic, msgtype] = writer.add_connection(topic, msgtype,
                                                                    typestore=store)
            data = store.serialize_cdr(to_rosbags(msg, store), msgtype)
            writer.write(connections[topic, msgtype], t_ns, data)


def read_bag(path: str | Path) -> Iterator[tuple[str, IdlStruct, int]]:
    """(topic, message, receive time in ns) in time order from a rosbag2 directory or a
    .mcap file. Topics whose type msgs.py does not define (a robot's /tf, /rosout …)
    are skipped, with one warning naming them."""
    store = typestore()
    with Reader(path) as reader:
        known = [c for c in reader.connections if c.msgtype in BY_ROS_NAME]
        skipped = sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections
                          if c.msgtype not in BY_ROS_NAME})
        if skipped:
            warnings.warn(f"{path}: skipping topics of types edgesnn.ros.msgs does not "
                          f"define: {', '.join(skipped)}", stacklevel=2)
        if not known:  # an empty filter means every connection to rosbags
            return
        for connection, t_ns, data in reader.messages(connections=known):
            yield (connection.topic, from_rosbags(store.deserialize_cdr(data, connection.msgtype)),
                   t_ns)
