"""ROS 2 bags of scenes (rosbags, pure Python: no rclpy here).

Writing: ``write_scene_bag(scene, path)`` stores a synthetic scene as a rosbag2
(mcap by default, or sqlite3) that ``ros2 bag play`` and ``perovss replay``
accept:

* camera frames, ``sensor_msgs/msg/Image`` rgb8, on ``/camera/image_raw``;
* ground truth, ``sensor_msgs/msg/Image`` 16UC1 (pixel = instance id), on
  ``/perovss/ground_truth`` with the same header stamps;
* the all-object ground truth (every personal object and look-alike with its
  own id, ``Scene.object_gt``), 16UC1, on ``/perovss/object_ground_truth``;
* the category ground truth (pixel = class id, 0 = no class, ``Scene.class_gt``),
  16UC1, on ``/perovss/class_ground_truth``;
* the teaching captures on ``/perovss/teach/image`` (rgb8) and their masks on
  ``/perovss/teach/mask`` (mono8, pixel = instance id), stamped just before the
  first camera frame.

Header stamps advance at the scene's fps from ``start_ns``; the bag's log time
equals the header stamp. Object names and the scene parameters go into the
bag's ``custom_data`` (``perovss.scene``, JSON), with the all-object id table
under ``object_ids`` (id -> name, kind, mimics, shape, pattern, color) and the
class table under ``classes`` (class id -> word).

Reading works on any rosbag2 with an image topic (Image in rgb8, bgr8, rgba8,
bgra8, mono8, or CompressedImage jpeg/png) and an optional mask topic, such as
one recorded in Gazebo; masks are matched to frames by header stamp.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.image_messages import decode_image, decode_mask
from perovss_ros.sim.scenes import Scene
from perovss_ros.sim.topics import (
    CLASS_MASK_TOPIC,
    FRAME_ID,
    IMAGE_TOPIC,
    MASK_TOPIC,
    OBJECT_MASK_TOPIC,
    STORAGES,
    TEACH_IMAGE_TOPIC,
    TEACH_MASK_TOPIC,
)

SCENE_KEY = "perovss.scene"
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
DEFAULT_MATCH_TOLERANCE_NS = 5_000_000
T = TypeVar("T")


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def stamp_ns(index: int, fps: float, start_ns: int = DEFAULT_START_NS) -> int:
    """Header stamp (ns) of frame ``index`` of a stream at ``fps`` starting at ``start_ns``."""
    return int(start_ns) + round(index * 1e9 / fps)


@dataclass(frozen=True)
class BagFrame:
    """One frame read from a bag: ``rgb`` ``H×W×3`` uint8, ``mask`` ``H×W`` uint16 or None (no ground truth).

    ``objects``: the all-object ground truth ``H×W`` uint16, when asked for and present;
    ``classes``: the category ground truth ``H×W`` uint16 (class ids), likewise.
    """

    stamp_ns: int
    rgb: np.ndarray
    mask: np.ndarray | None = None
    objects: np.ndarray | None = None
    classes: np.ndarray | None = None


def _image_msg(ts, array: np.ndarray, encoding: str, stamp: int, frame_id: str):
    """A rosbags ``sensor_msgs/msg/Image`` of ``array`` (H×W×3 uint8, H×W uint8 or H×W uint16)."""
    types = ts.types
    height, width = array.shape[:2]
    if array.dtype == np.uint16:
        data = np.ascontiguousarray(array.astype("<u2")).view(np.uint8).ravel()
    else:
        data = np.ascontiguousarray(array, dtype=np.uint8).ravel()
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000),
        frame_id=frame_id)
    return types["sensor_msgs/msg/Image"](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=data.size // height, data=data)


def write_scene_bag(scene: Scene, path: str | Path, *, storage: str = "mcap", image_topic: str = IMAGE_TOPIC,
                    mask_topic: str = MASK_TOPIC, teach_image_topic: str = TEACH_IMAGE_TOPIC,
                    teach_mask_topic: str = TEACH_MASK_TOPIC, start_ns: int = DEFAULT_START_NS,
                    frame_id: str = FRAME_ID, object_mask_topic: str = OBJECT_MASK_TOPIC,
                    class_mask_topic: str = CLASS_MASK_TOPIC) -> dict[str, int]:
    """Write ``scene`` as a new rosbag2 directory at ``path``; returns messages written per topic.

    ``storage`` is ``mcap`` or ``sqlite3``. An empty ``mask_topic``,
    ``object_mask_topic``, ``class_mask_topic`` or ``teach_image_topic``
    leaves that part out (no ``mask_topic`` leaves out the all-object and
    class masks too, and so does a scene without ``object_gt`` or
    ``class_gt``). Raises InvalidInputError if ``path`` exists or an argument
    is invalid.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise InvalidInputError(f"storage {storage!r}: use one of {', '.join(STORAGES)}")
    path = Path(path)
    if not teach_image_topic:
        teach_mask_topic = ""  # masks without their teaching frames would be meaningless
    if path.exists():
        raise InvalidInputError(f"{path} exists already; choose a new bag directory or remove it")
    if not scene.object_gt or not mask_topic:
        object_mask_topic = ""  # no ground truth asked for (or none drawn): none of either kind
    if not scene.class_gt or not mask_topic:
        class_mask_topic = ""
    topics = [t for t in (image_topic, mask_topic, object_mask_topic, class_mask_topic, teach_image_topic,
                          teach_mask_topic) if t]
    if len(set(topics)) != len(topics) or not image_topic:
        raise InvalidInputError(f"topics must be distinct and the image topic non-empty, got {topics}")
    for topic in topics:
        if not topic.startswith("/"):
            raise InvalidInputError(f"topic {topic!r} must be absolute (start with '/')")
    if any(int(g.max(initial=0)) > 255 for g in scene.teach_gt):
        raise InvalidInputError("teaching masks are mono8: instance ids above 255 cannot be stored")

    ts = _typestore()
    image_type = "sensor_msgs/msg/Image"
    counts: dict[str, int] = dict.fromkeys(topics, 0)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.set_custom_data(SCENE_KEY, json.dumps({
        "seed": scene.seed, "fps": scene.fps, "size": list(scene.size), "num_frames": scene.num_frames,
        "start_ns": int(start_ns),
        "objects": {str(o.instance_id): o.name for o in scene.objects},
        "lookalikes": [o.name for o in scene.lookalikes],
        "difficulty": scene.difficulty,
        "object_ids": {str(oid): {"name": o.name, "kind": o.kind, "mimics": o.mimics, "shape": o.shape,
                                  "pattern": o.pattern, "color": list(o.color)}
                       for oid, o in scene.object_ids.items()},
        "classes": {str(cid): word for cid, word in scene.class_names.items()},
    }))
    with writer:
        conns = {t: writer.add_connection(t, image_type, typestore=ts) for t in topics}

        def put(topic: str, array: np.ndarray, encoding: str, stamp: int) -> None:
            msg = _image_msg(ts, array, encoding, stamp, frame_id)
            writer.write(conns[topic], stamp, ts.serialize_cdr(msg, image_type))
            counts[topic] += 1

        if teach_image_topic:
            n = len(scene.teach_frames)
            for k, (rgb, gt) in enumerate(zip(scene.teach_frames, scene.teach_gt, strict=True)):
                stamp = stamp_ns(k - n, scene.fps, start_ns)
                put(teach_image_topic, rgb, "rgb8", stamp)
                if teach_mask_topic:
                    put(teach_mask_topic, gt.astype(np.uint8), "mono8", stamp)
        for i, (rgb, gt) in enumerate(zip(scene.frames, scene.gt, strict=True)):
            stamp = stamp_ns(i, scene.fps, start_ns)
            put(image_topic, rgb, "rgb8", stamp)
            if mask_topic:
                put(mask_topic, gt, "16UC1", stamp)
            if object_mask_topic:
                put(object_mask_topic, scene.object_gt[i], "16UC1", stamp)
            if class_mask_topic:
                put(class_mask_topic, scene.class_gt[i], "16UC1", stamp)
    return counts


class _Bag:
    """An open bag (rosbags AnyReader) with errors turned into InvalidInputError."""

    def __init__(self, path: str | Path):
        from rosbags.highlevel import AnyReader

        self.path = Path(path)
        if not self.path.exists():
            raise InvalidInputError(f"bag {self.path} does not exist")
        try:
            self.reader = AnyReader([self.path], default_typestore=_typestore())
            self.reader.open()
        except Exception as exc:  # rosbags raises several unrelated types for unreadable bags
            raise InvalidInputError(f"cannot read bag {self.path}: {exc}") from exc

    def __enter__(self) -> _Bag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()

    def topics(self) -> dict[str, tuple[str, int]]:
        """Topic -> (message type, message count); a topic with several types lists them joined by ", "."""
        kinds: dict[str, set[str]] = {}
        for conn in self.reader.connections:
            kinds.setdefault(conn.topic, set()).add(conn.msgtype)
        return {name: (", ".join(sorted(kinds.get(name, ()))), int(info.msgcount))
                for name, info in self.reader.topics.items()}

    def messages(self, topic: str) -> Iterator[tuple[int, object]]:
        """``(stamp_ns, message)`` of ``topic`` in bag order; stamp = header stamp, else log time."""
        conns = [c for c in self.reader.connections if c.topic == topic]
        if not conns:
            raise InvalidInputError(f"bag {self.path} has no topic {topic}; it has {', '.join(sorted(self.topics()))}")
        for conn in conns:
            if conn.msgtype not in IMAGE_TYPES:
                raise InvalidInputError(f"topic {topic} carries {conn.msgtype}; expected one of {IMAGE_TYPES}")
        for conn, logtime, raw in self.reader.messages(connections=conns):
            msg = self.reader.deserialize(raw, conn.msgtype)
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            yield (int(stamp) if stamp else int(logtime)), msg


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """Topics of a bag: name -> (message type, message count)."""
    with _Bag(path) as bag:
        return bag.topics()


def bag_scene_info(path: str | Path) -> dict:
    """The ``perovss.scene`` custom data of a bag written by ``write_scene_bag`` ({} for other bags)."""
    import yaml

    try:
        with open(Path(path) / "metadata.yaml", encoding="utf-8") as handle:
            meta = yaml.safe_load(handle) or {}
        custom = meta.get("rosbag2_bagfile_information", {}).get("custom_data") or {}
        info = json.loads(custom.get(SCENE_KEY, "{}"))
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return {}  # not a rosbag2 directory, or not one of ours: no scene information
    return info if isinstance(info, dict) else {}


def find_image_topic(path: str | Path, exclude: Sequence[str] = ()) -> str:
    """The bag's camera topic: ``/camera/image_raw`` if present, else its only image topic.

    Topics in ``exclude`` and the perovss ground-truth/teaching topics are not
    candidates. InvalidInputError if there is none or the choice is ambiguous.
    """
    topics = bag_topics(path)
    if IMAGE_TOPIC in topics and IMAGE_TOPIC not in exclude:
        return IMAGE_TOPIC
    skip = {*exclude, MASK_TOPIC, OBJECT_MASK_TOPIC, CLASS_MASK_TOPIC, TEACH_IMAGE_TOPIC, TEACH_MASK_TOPIC}
    candidates = sorted(t for t, (kinds, _) in topics.items()
                        if t not in skip and kinds and all(k in IMAGE_TYPES for k in kinds.split(", ")))
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise InvalidInputError(f"cannot choose the image topic of {path} (image topics: {found}); "
                                "name it with --image-topic")
    return candidates[0]


def read_images(path: str | Path, topic: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(stamp_ns, rgb)`` for each image of ``topic`` (default: ``find_image_topic``); rgb ``H×W×3`` uint8."""
    topic = topic or find_image_topic(path)
    with _Bag(path) as bag:
        for stamp, msg in bag.messages(topic):
            yield stamp, decode_image(msg)


def read_masks(path: str | Path, topic: str = MASK_TOPIC) -> Iterator[tuple[int, np.ndarray]]:
    """``(stamp_ns, mask)`` for each mask of ``topic``; mask ``H×W`` uint16."""
    with _Bag(path) as bag:
        for stamp, msg in bag.messages(topic):
            yield stamp, decode_mask(msg)


def read_messages(path: str | Path, topic: str) -> Iterator[tuple[int, object]]:
    """``(stamp_ns, message)`` of an image topic, undecoded (for encodings the mask decoder does not know)."""
    with _Bag(path) as bag:
        yield from bag.messages(topic)


def stamp_matcher(masks: dict[int, T], tolerance_ns: int = DEFAULT_MATCH_TOLERANCE_NS) -> Callable[[int], T | None]:
    """A function taking a stamp (ns) to the value of ``masks`` (stamp -> mask, or anything else) with that
    stamp, else the nearest within ``tolerance_ns``, else None."""
    stamps = sorted(masks)

    def match(stamp: int) -> T | None:
        if stamp in masks:
            return masks[stamp]
        k = bisect.bisect_left(stamps, stamp)
        near = [s for s in stamps[max(0, k - 1):k + 1] if abs(s - stamp) <= tolerance_ns]
        return masks[min(near, key=lambda s: abs(s - stamp))] if near else None

    return match


def read_frames(path: str | Path, image_topic: str | None = None, mask_topic: str | None = None,
                tolerance_ns: int = DEFAULT_MATCH_TOLERANCE_NS, object_mask_topic: str | None = None,
                class_mask_topic: str | None = None) -> Iterator[BagFrame]:
    """Frames of a bag with their masks: the mask with the same header stamp (or the nearest within
    ``tolerance_ns``), None where a frame has no mask or ``mask_topic`` is None/empty. The same for the
    all-object masks of ``object_mask_topic`` (``BagFrame.objects``) and the class masks of
    ``class_mask_topic`` (``BagFrame.classes``).
    """
    match, match_objects, match_classes = (
        stamp_matcher(dict(read_masks(path, topic)) if topic else {}, tolerance_ns)
        for topic in (mask_topic, object_mask_topic, class_mask_topic))
    for stamp, rgb in read_images(path, image_topic):
        mask, objects, classes = match(stamp), match_objects(stamp), match_classes(stamp)
        for kind, m in (("mask", mask), ("object mask", objects), ("class mask", classes)):
            check_mask_size(m, rgb, stamp, kind)
        yield BagFrame(stamp, rgb, mask, objects, classes)


def check_mask_size(mask: np.ndarray | None, rgb: np.ndarray, stamp: int, kind: str = "mask") -> None:
    """InvalidInputError when ``mask`` (``H×W``, or None: nothing to check) does not fit its ``H×W×3`` image."""
    if mask is not None and mask.shape[:2] != rgb.shape[:2]:
        raise InvalidInputError(f"{kind} at stamp {stamp} is {mask.shape[1]}×{mask.shape[0]} but its image is "
                                f"{rgb.shape[1]}×{rgb.shape[0]}")


def read_teach(path: str | Path, image_topic: str = TEACH_IMAGE_TOPIC, mask_topic: str = TEACH_MASK_TOPIC
               ) -> list[BagFrame]:
    """The teaching captures of a bag and their masks (empty list if the bag has no teaching topics)."""
    topics = bag_topics(path)
    if image_topic not in topics:
        return []
    return list(read_frames(path, image_topic, mask_topic if mask_topic in topics else None))
