"""Ground truth from Gazebo's segmentation camera, bridged to ROS 2 (ROS-free: works on decoded messages).

Gazebo's segmentation sensor (gz-sensors ``SegmentationCameraSensor``)
publishes ``<topic>/labels_map`` as a ``gz.msgs.Image`` in ``RGB_INT8``;
``ros_gz_bridge`` turns that into a ``sensor_msgs/msg/Image`` ``rgb8`` with the
bytes unchanged. The bytes of one pixel (gz-rendering
``Ogre2SegmentationCamera::LabelMapFromColoredBuffer``):

* panoptic (``<segmentation_type>panoptic</segmentation_type>`` or
  ``instance``): byte 2 is the label id (8 bits, from the model's label
  plugin ``<label>``), bytes 0 and 1 the instance count, little endian:
  ``count = byte0 + 256 × byte1``. Gazebo's Python tutorial reads the saved
  PNG with OpenCV, in BGR order, and so finds the label in channel 0 and the
  count as ``channel1 × 256 + channel2``: the same bytes;
* semantic: all three bytes are the label id (a ``mono8``/``16UC1`` label
  image, as other tools write, is accepted too).

That is the ``bridged`` layout. Maps made from the saved PNGs with OpenCV
(BGR order) have the ``opencv`` layout: label in channel 0, count
``channel1 × 256 + channel2``.

Label 0 is the background and every model without a label plugin. Instance
counts number the models of one label 1, 2, ... in Gazebo's own order; they
stay the same while the world's models do.

``GazeboTruth`` turns such maps into perovss ground truth: the personal
objects, picked by ``(label, instance)`` (``--personal my_mug=10:2``, or by
label alone when the object has a label of its own), an all-object map (one
id per ``(label, instance)``; panoptic only) and a class map whose words come
from a label id -> word table (YAML, ``load_label_table``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.eval.open_vocab import CategoryTable

MODES: tuple[str, ...] = ("panoptic", "semantic")
#: Byte layouts: (label byte, high count byte, low count byte).
LAYOUTS: dict[str, tuple[int, int, int]] = {"bridged": (2, 1, 0), "opencv": (0, 1, 2)}
MAX_LABEL = 255  # label ids are one byte of the labels map
_PERSONAL = re.compile(r"^([^=]+)=(\d+)(?::(\d+))?$")


def split_labels_map(pixels: np.ndarray, mode: str, layout: str = "bridged"
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(labels, instances)`` of a labels map: ``pixels`` ``H×W×3`` uint8 in the message's byte order.

    ``labels`` is ``H×W`` uint16 (0 = background/unlabelled), ``instances``
    ``H×W`` uint16 instance counts (panoptic) or None (semantic). ``layout``
    is one of ``LAYOUTS`` (see the module docstring). A semantic map whose
    three bytes differ is refused: it is a panoptic map.
    """
    if mode not in MODES:
        raise InvalidInputError(f"Gazebo segmentation mode {mode!r}: use one of {', '.join(MODES)}")
    if layout not in LAYOUTS:
        raise InvalidInputError(f"labels map layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    arr = np.asarray(pixels)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InvalidInputError(f"a Gazebo labels map is H×W×3 uint8, got {arr.shape} {arr.dtype}")
    label_byte, high_byte, low_byte = LAYOUTS[layout]
    labels = arr[..., label_byte].astype(np.uint16)
    if mode == "semantic":
        if not (np.array_equal(arr[..., 0], arr[..., 2]) and np.array_equal(arr[..., 1], arr[..., 2])):
            raise InvalidInputError("the labels map's three bytes differ, so it is panoptic (label and instance "
                                    "count); use --gazebo-mode panoptic")
        return labels, None
    instances = arr[..., low_byte].astype(np.uint16) | (arr[..., high_byte].astype(np.uint16) << 8)
    return labels, instances


def decode_labels_map(msg: object, mode: str, layout: str = "bridged") -> tuple[np.ndarray, np.ndarray | None]:
    """``(labels, instances)`` of a ``sensor_msgs/Image`` labels map (see ``split_labels_map``).

    Panoptic needs ``rgb8`` (what ``ros_gz_bridge`` publishes); semantic also
    takes single-channel label images (``mono8``, ``8UC1``, ``16UC1``, ``mono16``).
    """
    from perovss_ros.image_messages import MASK_ENCODINGS, decode_image, decode_mask

    encoding = str(getattr(msg, "encoding", ""))
    if encoding == "rgb8":
        return split_labels_map(decode_image(msg), mode, layout)  # rgb8 comes back byte for byte
    if mode == "semantic" and encoding in MASK_ENCODINGS:
        return decode_mask(msg), None
    accepted = "rgb8" if mode == "panoptic" else f"rgb8, {', '.join(MASK_ENCODINGS)}"
    raise InvalidInputError(f"Gazebo labels map in {encoding or '(no encoding)'!r}: a {mode} map must be "
                            f"{accepted}")


def load_label_table(source: str | Path | Mapping) -> dict[int, str]:
    """A label id -> category word table from a YAML file, inline YAML (``"{10: mug, 20: ball}"``) or a mapping.

    The YAML is a mapping of label ids (1..255) to words, at the top level or
    under ``labels:``. Several labels may share a word (e.g. your mug's label
    and the other mugs' label both ``mug``). InvalidInputError names what is wrong.
    """
    import yaml

    if isinstance(source, Mapping):
        raw = source
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else str(source)
            raw = yaml.safe_load(text)
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"cannot read the label table {source}: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise InvalidInputError(f"label table {source}: not a file, and not a YAML mapping such as "
                                    "'{10: mug, 20: ball}'")
    if isinstance(raw.get("labels"), Mapping):
        raw = raw["labels"]
    table: dict[int, str] = {}
    for key, word in raw.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise InvalidInputError(f"label table: {key!r} is not a label id (an integer 1..{MAX_LABEL})") from None
        if not 1 <= label <= MAX_LABEL:
            raise InvalidInputError(f"label table: label {label} out of range 1..{MAX_LABEL} (0 is Gazebo's "
                                    "background)")
        if not isinstance(word, str) or not word.strip():
            raise InvalidInputError(f"label table: label {label} needs a category word, got {word!r}")
        table[label] = word.strip()
    if not table:
        raise InvalidInputError("label table is empty: map Gazebo label ids to category words, e.g. {10: mug}")
    return table


@dataclass(frozen=True)
class PersonalLabel:
    """A personal object in Gazebo: concept ``name``, its ``label`` id and ``instance`` count (None: any)."""

    name: str
    label: int
    instance: int | None = None


def parse_personal(text: str) -> PersonalLabel:
    """``NAME=LABEL[:INSTANCE]`` (``my_mug=10:2``) as a ``PersonalLabel``."""
    match = _PERSONAL.match(text.strip())
    if not match:
        raise InvalidInputError(f"--personal {text!r}: write NAME=LABEL or NAME=LABEL:INSTANCE, e.g. my_mug=10:2")
    name, label, instance = match.group(1).strip(), int(match.group(2)), match.group(3)
    if not 1 <= label <= MAX_LABEL:
        raise InvalidInputError(f"--personal {text!r}: label {label} out of range 1..{MAX_LABEL}")
    return PersonalLabel(name, label, None if instance is None else int(instance))


class GazeboTruth:
    """perovss ground truth from Gazebo labels maps, for fixed personal objects and a label table.

    Personal object ``k`` (in the given order) gets ground-truth id ``k + 1``
    in both the personal map and the all-object map. The other
    ``(label, instance)`` pairs of ``pairs`` (every pair the bag shows,
    ``pair_counts``) get ids after them in sorted order, so ids are the same in
    every frame. Class ids number the table's distinct words in order of their
    smallest label.
    """

    def __init__(self, table: Mapping[int, str], personal: Sequence[PersonalLabel], mode: str,
                 pairs: Iterable[tuple[int, int]] = ()):
        if mode not in MODES:
            raise InvalidInputError(f"Gazebo segmentation mode {mode!r}: use one of {', '.join(MODES)}")
        if not personal:
            raise InvalidInputError("name the personal object(s) with --personal NAME=LABEL[:INSTANCE]")
        self.mode = mode
        self.table = dict(table)
        self.personal = list(personal)
        for k, p in enumerate(self.personal):
            if p.label not in self.table:
                raise InvalidInputError(f"personal object {p.name}: label {p.label} is not in the label table "
                                        f"({', '.join(str(lab) for lab in sorted(self.table))})")
            if mode == "semantic" and p.instance is not None:
                raise InvalidInputError(f"personal object {p.name}: a semantic map has no instances; pick it by "
                                        "its label alone (NAME=LABEL) or record the panoptic map")
            for q in self.personal[:k]:
                if q.label == p.label and (None in (p.instance, q.instance) or q.instance == p.instance):
                    raise InvalidInputError(f"personal objects {q.name} and {p.name} both take label {p.label}"
                                            + ("" if p.instance is None else f" instance {p.instance}"))
        words = list(dict.fromkeys(self.table[k] for k in sorted(self.table)))
        self.class_names = {k + 1: w for k, w in enumerate(words)}
        class_of = {w: k for k, w in self.class_names.items()}
        self._class_lut = np.zeros(MAX_LABEL + 1, np.uint16)
        for label, word in self.table.items():
            self._class_lut[label] = class_of[word]
        others = sorted({(int(lab), int(ins)) for lab, ins in pairs if lab and self._personal_index(lab, ins) is None})
        first = len(self.personal) + 1
        self.object_ids: dict[tuple[int, int], int] = {pair: first + k for k, pair in enumerate(others)}

    def _personal_index(self, label: int, instance: int) -> int | None:
        for k, p in enumerate(self.personal):
            if p.label == label and (p.instance is None or p.instance == instance):
                return k
        return None

    def categories(self) -> CategoryTable:
        """The class table and each object id's category word (personal objects included)."""
        objects = {k + 1: self.table[p.label] for k, p in enumerate(self.personal)}
        if self.mode == "panoptic":
            objects.update({oid: self.table[lab] for (lab, _), oid in self.object_ids.items() if lab in self.table})
        return CategoryTable(class_names=dict(self.class_names), object_categories=objects)

    def maps(self, labels: np.ndarray, instances: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(personal, objects, classes)`` ``H×W`` uint16 maps of one frame.

        ``personal``: personal object ``k`` -> ``k + 1``; ``objects``: every
        known ``(label, instance)`` its id (None in semantic mode, which cannot
        tell instances apart); ``classes``: class id of the label's word (0 for
        labels not in the table).
        """
        labels = np.asarray(labels)
        personal = np.zeros(labels.shape, np.uint16)
        for k, p in enumerate(self.personal):
            hit = labels == p.label
            if p.instance is not None and instances is not None:
                hit &= instances == p.instance
            personal[hit] = k + 1
        classes = self._class_lut[np.clip(labels, 0, MAX_LABEL)]
        if instances is None or self.mode == "semantic":
            return personal, None, classes
        objects = personal.copy()
        for (lab, ins), oid in self.object_ids.items():
            objects[(labels == lab) & (instances == ins)] = oid
        return personal, objects, classes


def pair_counts(maps: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> dict[tuple[int, int], tuple[int, int]]:
    """Every labelled ``(label, instance)`` pair in ``(labels, instances)`` maps (instance 0 when semantic), with
    ``(frames it is seen in, pixels over all frames)``."""
    counts: dict[tuple[int, int], tuple[int, int]] = {}
    for labels, instances in maps:
        inst = np.zeros_like(labels) if instances is None else instances
        codes, pixels = np.unique(labels.astype(np.uint32) << 16 | inst.astype(np.uint32), return_counts=True)
        for code, n in zip(codes.tolist(), pixels.tolist(), strict=True):
            if code >> 16:
                pair = (code >> 16, code & 0xFFFF)
                frames, total = counts.get(pair, (0, 0))
                counts[pair] = (frames + 1, total + n)
    return counts
