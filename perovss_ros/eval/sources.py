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
  concepts know their look-alikes' ids.
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

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class ConceptSpec:
    """A concept to teach: its ``name``, its ``gt_id`` in the ground truth, and shots ``(rgb, mask)``."""

    name: str
    gt_id: int
    shots: list[tuple[np.ndarray, np.ndarray]]
    lookalike_ids: tuple[int, ...] = ()


@dataclass
class EvalFrame:
    """One frame to process: ``rgb`` ``H×W×3`` uint8, ``gt`` ``H×W`` uint16 or None (not scored).

    ``objects``: all-object ground truth ``H×W`` uint16 (each look-alike its own id) or None.
    """

    index: int
    rgb: np.ndarray
    gt: np.ndarray | None
    stamp_ns: int | None = None
    objects: np.ndarray | None = None


@dataclass
class EvalSequence:
    """Concepts and a frame stream. ``video`` False: frames are independent shots (tracking reset each frame)."""

    name: str
    concepts: list[ConceptSpec]
    frames: Callable[[], Iterator[EvalFrame]]
    num_frames: int | None = None
    video: bool = True
    info: dict = field(default_factory=dict)


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


def bag_sequences(path: str | Path, image_topic: str | None = None, mask_topic: str | None = None,
                  teach_frames: Sequence[int] | None = None) -> list[EvalSequence]:
    """One sequence from a bag; see the module docstring for where teaching comes from.

    ``mask_topic`` None means the default ground-truth topic when the bag has it.
    """
    from perovss_ros.sim import bags
    from perovss_ros.sim.topics import MASK_TOPIC, OBJECT_MASK_TOPIC

    path = Path(path)
    topics = bags.bag_topics(path)
    image_topic = image_topic or bags.find_image_topic(path, exclude=[t for t in (mask_topic,) if t])
    if mask_topic is None:
        mask_topic = MASK_TOPIC if MASK_TOPIC in topics else ""
    if mask_topic and mask_topic not in topics:
        raise InvalidInputError(f"bag {path} has no mask topic {mask_topic}; it has {', '.join(sorted(topics))}")

    skip: set[int] = set()
    if teach_frames:
        if not mask_topic:
            raise InvalidInputError("teaching from --teach-frames needs masks: give the bag's mask topic")
        wanted = sorted(set(int(i) for i in teach_frames))
        shots_src = []
        for k, frame in enumerate(bags.read_frames(path, image_topic, mask_topic)):
            if k in wanted:
                if frame.mask is None:
                    raise InvalidInputError(f"teaching frame {k} has no mask on {mask_topic}")
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
                                    "with --teach-frames (their masks come from the mask topic)")
        shots_src = [(t.rgb, t.mask) for t in teach]

    info = bags.bag_scene_info(path)
    names = {int(k): v for k, v in info.get("objects", {}).items()}
    ids = sorted({int(v) for _, m in shots_src for v in np.unique(m) if v})
    if not ids:
        raise InvalidInputError(f"the teaching masks of {path} are empty: nothing to teach")
    table = info.get("object_ids") or {}
    object_topic = OBJECT_MASK_TOPIC if table and OBJECT_MASK_TOPIC in topics else None

    def lookalikes_of(name: str | None) -> tuple[int, ...]:
        return tuple(sorted(int(k) for k, v in table.items() if isinstance(v, dict) and v.get("mimics") == name))

    concepts = [ConceptSpec(name=concept_name(names.get(i, f"object_{i}")), gt_id=i,
                            shots=[(rgb, m == i) for rgb, m in shots_src if np.any(m == i)],
                            lookalike_ids=lookalikes_of(names.get(i)) if object_topic else ()) for i in ids]

    def frames() -> Iterator[EvalFrame]:
        for k, frame in enumerate(bags.read_frames(path, image_topic, mask_topic or None,
                                                   object_mask_topic=object_topic)):
            if k not in skip:
                yield EvalFrame(k, frame.rgb, frame.mask, frame.stamp_ns, frame.objects)

    count = topics.get(image_topic, ("", 0))[1] - len(skip)
    return [EvalSequence(name=path.name, concepts=concepts, frames=frames, num_frames=count, video=True,
                         info={"image_topic": image_topic, "mask_topic": mask_topic, "teach_frames": sorted(skip),
                               "object_mask_topic": object_topic})]


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
                                   options.get("teach_frames"))
    if kind == "perseg":
        return kind, perseg_sequences(path, options.get("objects"))
    if kind == "davis":
        return kind, davis_sequences(path, options.get("resolution") or "480p", options.get("objects"))
    raise InvalidInputError(f"unknown source kind {kind!r}; use bag, perseg, davis or auto")
