"""Bag replay and recording without ROS tools: rosbags for the files, rclpy for the wire.

Messages stay serialized (CDR) end to end: replay publishes the bag's raw bytes and
recording writes what a raw subscription receives, so nothing is deserialized and a
recorded bag plays with ``ros2 bag play`` on a system ROS install.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from perovss_ros.core.errors import InvalidInputError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
#: rosbag2 metadata version written: 8 is read by Iron, Jazzy, Kilted and newer.
BAG_VERSION = 8
#: Seconds replay waits after a subscriber appears: discovery finishes on the subscriber's side too.
SETTLE_S = 0.5


def message_class(msgtype: str) -> type:
    """``"pkg/msg/Name"`` → the rclpy message class (the package must be installed)."""
    try:
        pkg, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise InvalidInputError(f"message type {msgtype!r} is not installed here: {exc}") from None


def parse_remaps(remaps: Iterable[str]) -> dict[str, str]:
    """``["/a:=/b", ...]`` → ``{"/a": "/b"}``; a malformed rule raises InvalidInputError."""
    out = {}
    for rule in remaps:
        src, sep, dst = rule.partition(":=")
        if not sep or not src or not dst:
            raise InvalidInputError(f"remap {rule!r} is not FROM:=TO")
        out[src] = dst
    return out


def image_topics(bag: Path | str) -> dict[str, str]:
    """``{topic: msgtype}`` of the image topics in ``bag``."""
    with Reader(bag) as reader:
        return {c.topic: c.msgtype for c in reader.connections if c.msgtype in IMAGE_TYPES}


def replay(
    node: Node,
    bag: Path | str,
    topics: list[str] | None = None,
    remap: dict[str, str] | None = None,
    rate: float = 1.0,
    fast: bool = False,
    loop: bool = False,
    wait_subscribers: float = 5.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Publish ``topics`` of ``bag`` (default: its image topics) with ``node``; returns messages sent.

    Real time scaled by ``rate`` (from the bag's receive timestamps) unless ``fast``;
    ``loop`` replays until ``should_stop()``. Waits up to ``wait_subscribers`` s for a
    subscriber first, so a fast replay is not published into the void.
    """
    if rate <= 0:
        raise InvalidInputError(f"rate must be > 0, got {rate}")
    remap = remap or {}
    with Reader(bag) as reader:
        available = {c.topic: c for c in reader.connections}
        wanted = topics or [t for t, c in available.items() if c.msgtype in IMAGE_TYPES]
        missing = [t for t in wanted if t not in available]
        if missing or not wanted:
            raise InvalidInputError(
                f"topic(s) {', '.join(missing) or '(no image topic)'} not in {bag}; "
                f"it has: {', '.join(f'{t} [{c.msgtype}]' for t, c in available.items()) or 'nothing'}"
            )
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {t: node.create_publisher(message_class(available[t].msgtype), remap.get(t, t), qos)
                for t in wanted}
        deadline = time.monotonic() + wait_subscribers
        while time.monotonic() < deadline and not any(p.get_subscription_count() for p in pubs.values()):
            time.sleep(0.05)
        if any(p.get_subscription_count() for p in pubs.values()):
            time.sleep(SETTLE_S)
        conns = [available[t] for t in wanted]
        sent = 0
        try:
            while True:
                start_wall, start_bag = time.monotonic(), None
                for conn, stamp, data in reader.messages(connections=conns):
                    if should_stop():
                        return sent
                    if start_bag is None:
                        start_bag = stamp
                    if not fast:
                        delay = start_wall + (stamp - start_bag) * 1e-9 / rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    try:
                        pubs[conn.topic].publish(bytes(data))
                    except Exception:  # RCLError or InvalidHandle: Ctrl-C shut the context down after should_stop()
                        if node.context.ok():
                            raise
                        return sent
                    sent += 1
                if not loop or should_stop():
                    return sent
        finally:
            # Reliable delivery finishes only while the publisher exists: wait before returning.
            for pub in pubs.values():
                if not node.context.ok():  # after Ctrl-C the context is gone and nothing can be delivered
                    break
                try:
                    pub.wait_for_all_acked(Duration(seconds=5))
                except Exception:  # rclpy's RCLError: Ctrl-C shut the context down while we waited
                    if node.context.ok():
                        raise
                    break


def typestore_for(msgtypes: Iterable[str]):
    """A rosbags typestore (Kilted) that also knows any installed package type it lacks."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    store = get_typestore(Stores.ROS2_KILTED)
    for msgtype in msgtypes:
        if msgtype in store.types:
            continue
        pkg = msgtype.split("/")[0]
        try:
            share = Path(get_package_share_directory(pkg))
        except PackageNotFoundError:
            raise InvalidInputError(f"cannot record {msgtype}: package {pkg} is not installed") from None
        # Register the whole package at once so its messages can refer to each other.
        types = {}
        for path in sorted((share / "msg").glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{pkg}/msg/{path.stem}"))
        store.register(types)
    return store


class BagRecorder:
    """Writes raw messages of ``topics`` received by ``node`` into a new bag directory ``path``."""

    def __init__(self, node: Node, path: Path | str, topic_types: dict[str, str]):
        self.count = 0
        self._writer = Writer(path, version=BAG_VERSION)
        store = typestore_for(topic_types.values())
        self._writer.open()
        self._subs = []
        # Best effort hears every publisher; depth absorbs bursts while the writer works.
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                         reliability=ReliabilityPolicy.BEST_EFFORT)
        for topic, msgtype in topic_types.items():
            conn = self._writer.add_connection(topic, msgtype, typestore=store)
            self._subs.append(node.create_subscription(
                message_class(msgtype), topic, self._writer_callback(node, conn), qos, raw=True))
        self._node = node

    def _writer_callback(self, node: Node, conn) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            self._writer.write(conn, node.get_clock().now().nanoseconds, data)
            self.count += 1

        return write

    def close(self) -> None:
        """Stop listening and finish the bag (metadata.yaml); safe to call twice."""
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def wait_topic_types(node: Node, topics: list[str], timeout: float) -> dict[str, str]:
    """Wait until every topic has a publisher; returns ``{topic: "pkg/msg/Name"}``."""
    deadline = time.monotonic() + timeout
    found: dict[str, str] = {}
    while True:
        graph = dict(node.get_topic_names_and_types())
        found = {t: graph[t][0] for t in topics if graph.get(t)}
        if len(found) == len(topics) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    missing = [t for t in topics if t not in found]
    if missing:
        raise InvalidInputError(
            f"no publisher on {', '.join(missing)} after {timeout:g} s; check the topic name")
    return found
