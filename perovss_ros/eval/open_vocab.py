"""Open-vocabulary metrics: personal concepts and generic categories, measured as the personalised-OVSS paper does.

Inputs per frame: the predicted segments (``PredictedSegment``: published
label, category word or None, personal flag, ``H×W`` bool mask), the personal
ground truth (``H×W`` uint16, concept ground-truth ids), the all-object map
(``H×W`` uint16, each object its id; optional) and the class map (``H×W``
uint16 class ids, 0 = no class), with a ``CategoryTable`` naming class ids and
each object's category. Everything is accumulated by *word*, so sequences with
different id tables pool.

Definitions (``OpenVocabScorer``):

* **IoU^per** of a personal concept: its intersection over union accumulated
  over all scored frames, ``Σ|P∩G| / Σ|P∪G|`` (the concept treated as one
  more semantic class), where ``P`` is the union of the frame's segments that
  are ``personal`` and labelled with the concept's name and ``G`` its ground
  truth (1.0 when it is never seen nor predicted); ``iou_per_mean`` averages
  it over concepts. The per-frame mean over
  frames where the object is in view is given beside it (``miou_frames``).
* **Generic mIoU** over the vocabulary classes (the usual semantic-segmentation
  definition): each pixel's predicted category is the category of the last
  segment in the frame's list that covers it (personal segments included,
  with their category: a taught ``my_mug`` still predicts ``mug``), else
  none. Per class, ``IoU_c = Σ TP_c / Σ (TP_c + FP_c + FN_c)`` over all
  frames; pixels of class 0 are not ignored (a ``mug`` on the background is a
  false positive for ``mug``). The mean is over vocabulary classes whose
  union is not empty (a class never seen nor predicted is left out, as
  ``nanmean`` does). The vocabulary is the scorer's, else the tables' own
  (``CategoryTable.vocabulary``: the scenes' object words, without
  ``clutter``), else every class word.
* **Off-vocabulary classes** (ground-truth classes outside the vocabulary,
  such as the scenes' ``clutter``): the share of their pixels that got any
  category; what a "none of these" threshold should keep low.
* **Personal false positives on same-category look-alikes**: every
  (frame, object) where the object is in view, is not the concept's own
  object and has the concept object's category. It counts as a false
  positive when more than half of the concept's personal prediction ``P``
  lies on it.
* **Right category**: every (frame, object) in view with a category in the
  table; right when some segment of that category has IoU ≥ 0.5 with it.
  ``non_personal`` repeats it over the objects that are no taught concept's
  (the generic labels alone: look-alikes, other objects).
* **Generic mIoU outside the personal objects** (``miou_outside_personal``): the
  same, over the pixels that are no personal object's in the personal ground
  truth. A taught concept is segmented by the identity, often better than the
  generic path segments the same object untaught, which raises the plain generic
  mIoU; this one asks only whether everything else keeps its labels.
* ``compare_runs``: generic mIoU of a run with personal concepts taught
  against one without (the "keeps the open vocabulary" claim), in points, and
  the same outside the personal objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from perovss_ros.core.errors import InvalidInputError

RIGHT_CATEGORY_IOU = 0.5
COMPARE_TOLERANCE_POINTS = 1.0


@dataclass(frozen=True)
class PredictedSegment:
    """One predicted segment: published ``label`` ("my_mug", "mug"), ``category`` word or None, mask ``H×W`` bool."""

    label: str
    category: str | None
    personal: bool
    mask: np.ndarray


@dataclass(frozen=True)
class CategoryTable:
    """What the ground-truth ids mean: class id -> word, and all-object id -> category word.

    ``vocabulary``: the class words a generic mIoU is about by default (empty: all of ``class_names``).
    """

    class_names: Mapping[int, str]
    object_categories: Mapping[int, str] = field(default_factory=dict)
    vocabulary: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersonalTruth:
    """A taught concept's ``name`` and its id in the personal ground truth (and the all-object map)."""

    name: str
    gt_id: int


def predicted_segments(instance_mask: np.ndarray, segments: Iterable[object]) -> list[PredictedSegment]:
    """``PredictedSegment`` s from an ``H×W`` instance mask and its segments.

    ``segments`` are any objects with ``label``, ``instance_id`` and
    ``personal`` (core ``Segment``, a ``Segment.msg``) and, once the pipeline
    labels, ``category`` (missing or empty: None).
    """
    out = []
    for seg in segments:
        category = getattr(seg, "category", None) or None
        out.append(PredictedSegment(str(seg.label), category, bool(seg.personal),
                                    np.asarray(instance_mask) == int(seg.instance_id)))
    return out


def _counts() -> dict[str, int]:
    return {"intersection": 0, "union": 0, "gt_pixels": 0, "pred_pixels": 0, "labelled_pixels": 0}


def _add_overlap(entry: dict[str, int], truth: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int]:
    """Add the ``H×W bool`` masks' intersection and union to ``entry``; returns ``(intersection, truth pixels,
    predicted pixels)``."""
    inter = int(np.count_nonzero(truth & predicted))
    n_gt, n_pred = int(np.count_nonzero(truth)), int(np.count_nonzero(predicted))
    entry["intersection"] += inter
    entry["union"] += n_gt + n_pred - inter
    return inter, n_gt, n_pred


def _share(n: int, total: int) -> float:
    return n / total if total else float("nan")


class OpenVocabScorer:
    """Accumulates the open-vocabulary metrics over frames (see the module docstring).

    ``vocabulary``: the class words the generic mIoU averages over (None: every
    word of the class tables seen).
    """

    def __init__(self, vocabulary: Sequence[str] | None = None):
        self.vocabulary = list(dict.fromkeys(vocabulary)) if vocabulary else None
        self.frames = 0
        self.segments = 0
        self.labelled_segments = 0
        self._words: dict[str, None] = {}
        self._table_vocabulary: dict[str, None] = {}
        self._personal: dict[str, dict] = {}
        self._classes: dict[str, dict[str, int]] = {}
        self._classes_outside: dict[str, dict[str, int]] = {}  # over pixels that are no personal object's
        self._lookalike: dict[str, list[int]] = {}
        self._right: dict[str, list[int]] = {}
        self._right_generic = [0, 0]  # object frames, right: objects that are no concept's

    def add(self, segments: Sequence[PredictedSegment], personal: Sequence[PersonalTruth],
            categories: CategoryTable, personal_gt: np.ndarray | None, classes: np.ndarray | None,
            objects: np.ndarray | None = None) -> dict[str, float]:
        """Score one frame; returns its own numbers (``category_iou``: mean IoU over the classes in it).

        Any ground truth may be None (its metrics skip the frame). Masks must
        all be ``H×W`` of the same size.
        """
        shape = next((np.shape(a) for a in (classes, personal_gt, objects) if a is not None), None)
        if shape is None:
            return {}
        for seg in segments:
            if np.shape(seg.mask) != shape:
                raise InvalidInputError(f"segment {seg.label!r} mask {np.shape(seg.mask)} differs from the ground "
                                        f"truth {shape}")
        self.frames += 1
        self.segments += len(segments)
        self.labelled_segments += sum(1 for s in segments if s.category)
        self._words.update(dict.fromkeys(categories.class_names.values()))
        self._table_vocabulary.update(dict.fromkeys(categories.vocabulary or categories.class_names.values()))
        out: dict[str, float] = {}
        if personal_gt is not None:
            self._add_personal(segments, personal, personal_gt)
        if classes is not None:
            out["category_iou"] = self._add_classes(segments, categories, classes, personal_gt)
        if objects is not None:
            self._add_objects(segments, personal, categories, objects)
        return out

    def _personal_mask(self, segments: Sequence[PredictedSegment], name: str, shape) -> np.ndarray:
        mask = np.zeros(shape, bool)
        for s in segments:
            if s.personal and s.label == name:
                mask |= np.asarray(s.mask, bool)
        return mask

    def _add_personal(self, segments, personal, personal_gt) -> None:
        for concept in personal:
            pred = self._personal_mask(segments, concept.name, personal_gt.shape)
            gt = personal_gt == concept.gt_id
            inter, union = int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))
            entry = self._personal.setdefault(concept.name, {"intersection": 0, "union": 0, "frames": 0,
                                                             "frames_present": 0, "frame_ious": []})
            entry["intersection"] += inter
            entry["union"] += union
            entry["frames"] += 1
            if gt.any():
                entry["frames_present"] += 1
                entry["frame_ious"].append(inter / union)

    def _add_classes(self, segments, categories: CategoryTable, classes: np.ndarray,
                     personal_gt: np.ndarray | None) -> float:
        words = list(dict.fromkeys([*categories.class_names.values(), *(s.category for s in segments if s.category)]))
        index = {w: k + 1 for k, w in enumerate(words)}
        gt = np.zeros(classes.shape, np.int32)
        for cid, word in categories.class_names.items():
            gt[classes == cid] = index[word]
        pred = np.zeros(classes.shape, np.int32)
        for s in segments:
            if s.category:
                pred[np.asarray(s.mask, bool)] = index[s.category]
        outside = personal_gt == 0 if personal_gt is not None else None
        frame_ious = []
        for word, k in index.items():
            g, p = gt == k, pred == k
            entry = self._classes.setdefault(word, _counts())
            inter, n_gt, n_pred = _add_overlap(entry, g, p)
            entry["gt_pixels"] += n_gt
            entry["pred_pixels"] += n_pred
            entry["labelled_pixels"] += int(np.count_nonzero(g & (pred > 0)))
            if n_gt and word in self._vocabulary():
                frame_ious.append(inter / (n_gt + n_pred - inter))
            if outside is not None:
                _add_overlap(self._classes_outside.setdefault(word, _counts()), g & outside, p & outside)
        return float(np.mean(frame_ious)) if frame_ious else float("nan")

    def _add_objects(self, segments, personal, categories: CategoryTable, objects: np.ndarray) -> None:
        present = [int(v) for v in np.unique(objects) if v]
        concept_ids = {c.gt_id for c in personal}
        for concept in personal:
            own = categories.object_categories.get(concept.gt_id)
            counts = self._lookalike.setdefault(concept.name, [0, 0])
            if own is None:
                continue
            pred = self._personal_mask(segments, concept.name, objects.shape)
            n_pred = int(np.count_nonzero(pred))
            for oid in present:
                if oid != concept.gt_id and categories.object_categories.get(oid) == own:
                    counts[0] += 1
                    counts[1] += n_pred > 0 and 2 * int(np.count_nonzero(pred & (objects == oid))) > n_pred
        for oid in present:
            word = categories.object_categories.get(oid)
            if word is None:
                continue
            gt = objects == oid
            n_gt = int(np.count_nonzero(gt))
            right = False
            for s in segments:
                if s.category == word:
                    m = np.asarray(s.mask, bool)
                    inter = int(np.count_nonzero(m & gt))
                    if inter and inter / (n_gt + int(np.count_nonzero(m)) - inter) >= RIGHT_CATEGORY_IOU:
                        right = True
                        break
            counts = self._right.setdefault(word, [0, 0])
            counts[0] += 1
            counts[1] += right
            if oid not in concept_ids:
                self._right_generic[0] += 1
                self._right_generic[1] += right

    def _vocabulary(self) -> list[str]:
        return self.vocabulary or list(self._table_vocabulary)

    def summary(self) -> dict:
        """Every metric as plain numbers (NaN where undefined); see the module docstring for definitions."""
        personal = {}
        for name, e in self._personal.items():
            personal[name] = {"iou_per": _share(e["intersection"], e["union"]) if e["union"] else 1.0,
                              "miou_frames": float(np.mean(e["frame_ious"])) if e["frame_ious"] else float("nan"),
                              "frames": e["frames"], "frames_present": e["frames_present"]}
        vocabulary = self._vocabulary()
        per_class = {}
        for word in vocabulary:
            e = self._classes.get(word, _counts())
            per_class[word] = {**e, "iou": _share(e["intersection"], e["union"])}
        off = {w: {"gt_pixels": self._classes[w]["gt_pixels"], "labelled_pixels": self._classes[w]["labelled_pixels"],
                   "fraction": _share(self._classes[w]["labelled_pixels"], self._classes[w]["gt_pixels"])}
               for w in self._words if w not in vocabulary and w in self._classes}
        class_ious = [v["iou"] for v in per_class.values() if not math.isnan(v["iou"])]
        outside = [_share(e["intersection"], e["union"]) for w, e in self._classes_outside.items() if w in vocabulary]
        outside = [iou for iou in outside if not math.isnan(iou)]
        lookalike = {name: {"object_frames": n, "as_personal": m, "fraction": _share(m, n)}
                     for name, (n, m) in self._lookalike.items()}
        total_n = sum(v["object_frames"] for v in lookalike.values())
        total_m = sum(v["as_personal"] for v in lookalike.values())
        right = {word: {"object_frames": n, "right": m, "fraction": _share(m, n)}
                 for word, (n, m) in self._right.items()}
        right_n = sum(v["object_frames"] for v in right.values())
        right_m = sum(v["right"] for v in right.values())
        generic_n, generic_m = self._right_generic
        ious = [v["iou_per"] for v in personal.values()]
        return {
            "frames": self.frames,
            "segments": self.segments,
            "labelled_segments": self.labelled_segments,
            "personal": personal,
            "iou_per_mean": float(np.mean(ious)) if ious else float("nan"),
            "generic": {"vocabulary": vocabulary, "per_class": per_class,
                        "miou": float(np.mean(class_ious)) if class_ious else float("nan"),
                        "miou_outside_personal": float(np.mean(outside)) if outside else float("nan")},
            "off_vocabulary": off,
            "lookalike_fp": {"per_concept": lookalike, "object_frames": total_n, "as_personal": total_m,
                             "fraction": _share(total_m, total_n)},
            "right_category": {"per_class": right, "object_frames": right_n, "right": right_m,
                               "fraction": _share(right_m, right_n),
                               "non_personal": {"object_frames": generic_n, "right": generic_m,
                                                "fraction": _share(generic_m, generic_n)}},
        }


def compare_runs(without: Mapping, with_personal: Mapping, tolerance_points: float = COMPARE_TOLERANCE_POINTS
                 ) -> dict:
    """Generic mIoU with personal concepts taught against without: the paper's "keeps the open vocabulary".

    ``without`` and ``with_personal`` are ``OpenVocabScorer.summary()``
    dictionaries (or a ``metrics.json``'s ``open_vocab``) of two runs over the
    same frames. Returns both mIoUs, ``delta_points`` = 100 × (with − without),
    ``within_tolerance`` (``|delta| ≤ tolerance_points``), the per-class
    deltas and ``outside_personal``: both runs' ``miou_outside_personal`` and their
    ``delta_points`` (NaN where a run has none). InvalidInputError when a run labelled nothing (the comparison would
    be vacuous) or the vocabularies differ.
    """
    for name, run in (("without", without), ("with", with_personal)):
        if not run.get("labelled_segments"):
            raise InvalidInputError(f"the run {name} personal concepts has no labelled segment: labelling was off, "
                                    "so its generic mIoU measures nothing")
    a, b = without["generic"], with_personal["generic"]
    if list(a["vocabulary"]) != list(b["vocabulary"]):
        raise InvalidInputError(f"the runs use different vocabularies ({a['vocabulary']} and {b['vocabulary']}); "
                                "compare runs over the same classes")

    def points(x, y) -> float:
        return 100.0 * (float(y) - float(x)) if x is not None and y is not None else float("nan")

    delta = points(a["miou"], b["miou"])
    per_class = {w: {"without": a["per_class"][w]["iou"], "with": b["per_class"][w]["iou"],
                     "delta_points": points(a["per_class"][w]["iou"], b["per_class"][w]["iou"])}
                 for w in a["vocabulary"]}
    outside = (a.get("miou_outside_personal", float("nan")), b.get("miou_outside_personal", float("nan")))
    return {"miou_without": a["miou"], "miou_with": b["miou"], "delta_points": delta,
            "outside_personal": {"miou_without": outside[0], "miou_with": outside[1],
                                 "delta_points": points(*outside)},
            "within_tolerance": bool(abs(delta) <= tolerance_points) if not math.isnan(delta) else False,
            "tolerance_points": float(tolerance_points), "per_class": per_class}
