"""Evaluation inputs: a scene bag (or any bag with images and masks), a PerSeg folder, a DAVIS folder.

Each source becomes a list of ``EvalSequence``: the concepts to teach (name,
ground-truth id, reference shots) and a lazy stream of frames with ground
truth. Images are ``H×W×3`` uint8 RGB, ground truth ``H×W`` uint16 ids (0 =
background), shot masks ``H×W`` bool.

Layouts:

* bag: a rosbag2 directory. Teaching comes from its ``/perovss/teach/*``
  topics (as ``perovss sim`` writes them) or from ``teach_frames`` indices of
  the image stream with the mask topic's masks (those frames are then not
  scored). Concept names come from the bag's scene metadata, else
  ``object_<id>``. When the bag has the all-object ground truth
  (``/perovss/object_ground_truth``) and its id table, frames carry it and
  concepts know their look-alikes' ids; with the category ground truth
  (``/perovss/class_ground_truth``) and its class table, frames carry their
  class map and the sequence its ``CategoryTable``.
* Gazebo bag (``GazeboSource``): ground truth from a segmentation camera's
  ``labels_map`` topic (``eval/gazebo.py``) and a label id -> word table; the
  personal objects are picked by ``(label, instance)``; teaching from
  ``teach_frames`` (their masks from the labels map).
* PerSeg: ``Images/<object>/NN.jpg`` and ``Annotations/<object>/NN.png``; shot
  ``00`` is the reference, the other images are evaluated independently (no
  tracking between them).
* DAVIS: ``JPEGImages/<res>/<seq>/*.jpg`` and ``Annotations/<res>/<seq>/*.png``
  (palette PNG, index = object id); frame 0's annotation teaches one concept
  per object id, frames 1.. are evaluated as a video.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.eval.open_vocab import CategoryTable

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class ConceptSpec:
    """A concept to teach: its ``name``, its ``gt_id`` in the ground truth, and shots ``(rgb, mask)``.

    ``category``: its category word from the ground truth (None: unknown), for teaching with a category.
    """

    name: str
    gt_id: int
    shots: list[tuple[np.ndarray, np.ndarray]]
    lookalike_ids: tuple[int, ...] = ()
    category: str | None = None


@dataclass
class EvalFrame:
    """One frame to process: ``rgb`` ``H×W×3`` uint8, ``gt`` ``H×W`` uint16 or None (not scored).

    ``objects``: all-object ground truth ``H×W`` uint16 (each look-alike its own id) or None;
    ``classes``: category ground truth ``H×W`` uint16 class ids (0 = no class) or None.
    """

    index: int
    rgb: np.ndarray
    gt: np.ndarray | None
    stamp_ns: int | None = None
    objects: np.ndarray | None = None
    classes: np.ndarray | None = None


@dataclass
class EvalSequence:
    """Concepts and a frame stream. ``video`` False: frames are independent shots (tracking reset each frame).

    ``categories``: what the frames' class and object ids mean (None: no category ground truth).
    """

    name: str
    concepts: list[ConceptSpec]
    frames: Callable[[], Iterator[EvalFrame]]
    num_frames: int | None = None
    video: bool = True
    info: dict = field(default_factory=dict)
    categories: CategoryTable | None = None


@dataclass(frozen=True)
class GazeboSource:
    """Where a Gazebo bag's ground truth is: its ``labels_map`` ``topic`` in ``mode`` (panoptic or semantic),
    the label id -> word ``table``, the personal objects (``eval.gazebo.PersonalLabel``) and the map's byte
    ``layout`` (``eval.gazebo.LAYOUTS``)."""

    topic: str
    mode: str
    table: dict[int, str]
    personal: tuple
    layout: str = "bridged"


def concept_name(raw: str) -> str:
    """A valid concept name (``^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$``) made from a folder or object name."""
    name = _NAME_OK.sub("_", raw).lstrip("_.-")[:64]
    return name or "object"


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``H×W×3`` uint8 RGB (InvalidInputError if unreadable)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InvalidInputError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label_png(path: Path) -> np.ndarray:
    """An annotation PNG as ``H×W`` uint16 ids: palette index (DAVIS), grey value, or any colour -> 1.

    Palette images keep their indices (OpenCV would expand them to colours,
    so they are read with Pillow).
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "P":
                return np.asarray(img, dtype=np.uint8).astype(np.uint16)
            arr = np.asarray(img)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read annotation {path}: {exc}") from exc
    if arr.ndim == 3:
        return (arr[..., :3].max(axis=2) > 0).astype(np.uint16)
    return arr.astype(np.uint16)


def detect_kind(path: str | Path) -> str:
    """``bag``, ``perseg`` or ``davis`` from what ``path`` contains (InvalidInputError if none fits)."""
    path = Path(path)
    if path.is_dir() and ((path / "metadata.yaml").is_file() or any(path.glob("*.mcap"))
                          or any(path.glob("*.db3"))):
        return "bag"
    if path.is_file() and path.suffix in (".mcap", ".db3"):
        return "bag"
    if (path / "Images").is_dir() and (path / "Annotations").is_dir():
        return "perseg"
    if (path / "JPEGImages").is_dir() and (path / "Annotations").is_dir():
        return "davis"
    raise InvalidInputError(f"{path} is not a bag, a PerSeg folder (Images/, Annotations/) or a DAVIS folder "
                            "(JPEGImages/, Annotations/)")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _gazebo_frames(path: Path, image_topic: str, source: GazeboSource):
    """``(truth, frames)`` of a Gazebo bag: its ``GazeboTruth`` (ids fixed by one pass over the labels maps)
    and a function giving its ``BagFrame`` s with personal, all-object and class maps from the labels map."""
    from perovss_ros.eval.gazebo import GazeboTruth, decode_labels_map, pair_counts
    from perovss_ros.sim import bags

    maps: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    for stamp, msg in bags.read_messages(path, source.topic):
        labels, instances = decode_labels_map(msg, source.mode, source.layout)
        maps[stamp] = (labels.astype(np.uint8), instances)  # label ids are one byte: keep the bag small in memory
    if not maps:
        raise InvalidInputError(f"the labels topic {source.topic} of {path} has no messages")
    truth = GazeboTruth(source.table, source.personal, source.mode, pair_counts(maps.values()))
    match = bags.stamp_matcher(maps)

    def frames() -> Iterator[bags.BagFrame]:
        for frame in bags.read_frames(path, image_topic):
            found = match(frame.stamp_ns)
            if found is None:
                yield frame
                continue
            labels, instances = found
            bags.check_mask_size(labels, frame.rgb, frame.stamp_ns, "labels map")
            personal, objects, classes = truth.maps(labels, instances)
            yield bags.BagFrame(frame.stamp_ns, frame.rgb, personal, objects, classes)

    return truth, frames


def bag_sequences(path: str | Path, image_topic: str | None = None, mask_topic: str | None = None,
                  teach_frames: Sequence[int] | None = None, gazebo: GazeboSource | None = None
                  ) -> list[EvalSequence]:
    """One sequence from a bag; see the module docstring for where teaching comes from.

    ``mask_topic`` None means the default ground-truth topic when the bag has it.
    With ``gazebo`` the ground truth comes from its labels map instead
    (``mask_topic`` must then be None).
    """
    from perovss_ros.sim import bags
    from perovss_ros.sim.categories import CLUTTER
    from perovss_ros.sim.topics import CLASS_MASK_TOPIC, MASK_TOPIC, OBJECT_MASK_TOPIC

    path = Path(path)
    topics = bags.bag_topics(path)
    if gazebo is not None:
        if mask_topic:
            raise InvalidInputError("a Gazebo labels topic and a mask topic are two ground truths: give one")
        if gazebo.topic not in topics:
            raise InvalidInputError(f"bag {path} has no labels topic {gazebo.topic}; it has "
                                    f"{', '.join(sorted(topics))}")
    image_topic = image_topic or bags.find_image_topic(
        path, exclude=[t for t in (mask_topic, gazebo.topic if gazebo else None) if t])
    info = bags.bag_scene_info(path)
    table = info.get("object_ids") or {}
    categories: CategoryTable | None = None
    if gazebo is not None:
        mask_topic = ""
        truth, read = _gazebo_frames(path, image_topic, gazebo)
        names = {k + 1: p.name for k, p in enumerate(truth.personal)}
        categories = truth.categories()
        object_topic = class_topic = None
    else:
        if mask_topic is None:
            mask_topic = MASK_TOPIC if MASK_TOPIC in topics else ""
        if mask_topic and mask_topic not in topics:
            raise InvalidInputError(f"bag {path} has no mask topic {mask_topic}; it has {', '.join(sorted(topics))}")
        names = {int(k): v for k, v in info.get("objects", {}).items()}
        object_topic = OBJECT_MASK_TOPIC if table and OBJECT_MASK_TOPIC in topics else None
        class_topic = CLASS_MASK_TOPIC if info.get("classes") and CLASS_MASK_TOPIC in topics else None
        if class_topic:
            class_names = {int(k): str(v) for k, v in info["classes"].items()}
            categories = CategoryTable(
                class_names=class_names,
                object_categories={int(k): str(v["shape"]) for k, v in table.items()
                                   if isinstance(v, dict) and v.get("shape")},
                vocabulary=tuple(w for w in class_names.values() if w != CLUTTER))  # clutter is no object word

        def read() -> Iterator[bags.BagFrame]:
            return bags.read_frames(path, image_topic, mask_topic or None, object_mask_topic=object_topic,
                                    class_mask_topic=class_topic)

    skip: set[int] = set()
    if teach_frames:
        if not mask_topic and gazebo is None:
            raise InvalidInputError("teaching from --teach-frames needs masks: give the bag's mask topic")
        wanted = sorted(set(int(i) for i in teach_frames))
        shots_src = []
        for k, frame in enumerate(read()):
            if k in wanted:
                if frame.mask is None:
                    source = gazebo.topic if gazebo else mask_topic
                    raise InvalidInputError(f"teaching frame {k} has no mask on {source}")
                shots_src.append((frame.rgb, frame.mask))
            if k >= wanted[-1]:
                break
        if len(shots_src) != len(wanted):
            raise InvalidInputError(f"teaching frames {wanted} are not all in the bag's {image_topic}")
        skip = set(wanted)
    else:
        teach = bags.read_teach(path)
        if not teach or any(t.mask is None for t in teach):
            raise InvalidInputError(f"bag {path} has no teaching topics with masks; name frames to teach from "
                                    "with --teach-frames (their masks come from the "
                                    + ("labels map)" if gazebo else "mask topic)"))
        shots_src = [(t.rgb, t.mask) for t in teach]

    ids = sorted({int(v) for _, m in shots_src for v in np.unique(m) if v})
    if not ids:
        raise InvalidInputError(f"the teaching masks of {path} are empty: nothing to teach")

    def lookalikes_of(gt_id: int) -> tuple[int, ...]:
        if gazebo is not None:  # no "mimics" in a Gazebo world: the look-alikes are the same-category objects
            own = categories.object_categories.get(gt_id)
            return tuple(sorted(o for o, w in categories.object_categories.items() if w == own and o != gt_id))
        if not object_topic:
            return ()
        name = names.get(gt_id)
        return tuple(sorted(int(k) for k, v in table.items() if isinstance(v, dict) and v.get("mimics") == name))

    concepts = [ConceptSpec(name=concept_name(names.get(i, f"object_{i}")), gt_id=i,
                            shots=[(rgb, m == i) for rgb, m in shots_src if np.any(m == i)],
                            lookalike_ids=lookalikes_of(i),
                            category=categories.object_categories.get(i) if categories else None) for i in ids]

    def frames() -> Iterator[EvalFrame]:
        for k, frame in enumerate(read()):
            if k not in skip:
                yield EvalFrame(k, frame.rgb, frame.mask, frame.stamp_ns, frame.objects, frame.classes)

    count = topics.get(image_topic, ("", 0))[1] - len(skip)
    extra = {"gazebo_labels_topic": gazebo.topic, "gazebo_mode": gazebo.mode} if gazebo else {}
    return [EvalSequence(name=path.name, concepts=concepts, frames=frames, num_frames=count, video=True,
                         info={"image_topic": image_topic, "mask_topic": mask_topic, "teach_frames": sorted(skip),
                               "object_mask_topic": object_topic, "class_mask_topic": class_topic, **extra},
                         categories=categories)]


def perseg_sequences(root: str | Path, objects: Sequence[str] | None = None) -> list[EvalSequence]:
    """One sequence per PerSeg object: teach from shot ``00``, evaluate the object's other images."""
    root = Path(root)
    folders = sorted(p for p in (root / "Images").iterdir() if p.is_dir())
    if objects:
        folders = [p for p in folders if p.name in set(objects)]
    if not folders:
        raise InvalidInputError(f"no object folders under {root / 'Images'}")
    sequences = []
    for folder in folders:
        images = _images(folder)
        ann_dir = root / "Annotations" / folder.name
        if not images:
            continue
        ref = next((p for p in images if p.stem == "00"), images[0])
        ref_ann = ann_dir / f"{ref.stem}.png"
        if not ref_ann.is_file():
            raise InvalidInputError(f"PerSeg reference annotation {ref_ann} is missing")
        rest = [p for p in images if p != ref]

        def frames(rest=rest, ann_dir=ann_dir) -> Iterator[EvalFrame]:
            for k, img in enumerate(rest, start=1):
                ann = ann_dir / f"{img.stem}.png"
                gt = (read_label_png(ann) > 0).astype(np.uint16) if ann.is_file() else None
                yield EvalFrame(k, read_rgb(img), gt)

        shot = (read_rgb(ref), read_label_png(ref_ann) > 0)
        sequences.append(EvalSequence(name=folder.name, concepts=[ConceptSpec(concept_name(folder.name), 1, [shot])],
                                      frames=frames, num_frames=len(rest), video=False,
                                      info={"reference": ref.name}))
    return sequences


def davis_sequences(root: str | Path, resolution: str = "480p", sequences: Sequence[str] | None = None
                    ) -> list[EvalSequence]:
    """One sequence per DAVIS video: frame 0's annotation teaches each object id; frames 1.. are scored."""
    root = Path(root)
    base = root / "JPEGImages" / resolution
    if not base.is_dir():
        raise InvalidInputError(f"no {base}; DAVIS layout is JPEGImages/{resolution}/<sequence>/*.jpg")
    folders = sorted(p for p in base.iterdir() if p.is_dir())
    if sequences:
        folders = [p for p in folders if p.name in set(sequences)]
    out = []
    for folder in folders:
        images = _images(folder)
        ann_dir = root / "Annotations" / resolution / folder.name
        if len(images) < 2:
            continue
        first = ann_dir / f"{images[0].stem}.png"
        if not first.is_file():
            raise InvalidInputError(f"DAVIS first-frame annotation {first} is missing")
        labels = read_label_png(first)
        rgb0 = read_rgb(images[0])
        ids = [int(v) for v in np.unique(labels) if 0 < v < 255]  # 255 marks "void" in DAVIS
        concepts = [ConceptSpec(concept_name(f"{folder.name}_{i}"), i, [(rgb0, labels == i)]) for i in ids]

        def frames(images=images, ann_dir=ann_dir) -> Iterator[EvalFrame]:
            for k, img in enumerate(images[1:], start=1):
                ann = ann_dir / f"{img.stem}.png"
                yield EvalFrame(k, read_rgb(img), read_label_png(ann) if ann.is_file() else None)

        if concepts:
            out.append(EvalSequence(name=folder.name, concepts=concepts, frames=frames,
                                    num_frames=len(images) - 1, video=True))
    if not out:
        raise InvalidInputError(f"no DAVIS sequences with annotated objects under {base}")
    return out


def load_sequences(path: str | Path, kind: str = "auto", **options) -> tuple[str, list[EvalSequence]]:
    """``(kind, sequences)`` for ``path``; ``options`` go to the kind's loader (unknown ones are ignored if None)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist")
    kind = detect_kind(path) if kind == "auto" else kind
    if kind == "bag":
        return kind, bag_sequences(path, options.get("image_topic"), options.get("mask_topic"),
                                   options.get("teach_frames"), options.get("gazebo"))
    if kind == "perseg":
        return kind, perseg_sequences(path, options.get("objects"))
    if kind == "davis":
        return kind, davis_sequences(path, options.get("resolution") or "480p", options.get("objects"))
    raise InvalidInputError(f"unknown source kind {kind!r}; use bag, perseg, davis or auto")
