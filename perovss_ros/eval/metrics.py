"""Segmentation and presence metrics for personal objects.

All masks are ``H×W`` bool (anything non-zero counts as foreground). Conventions:

* ``iou``: both masks empty -> 1.0 (nothing to find, nothing found); exactly one
  empty -> 0.0.
* ``boundary_iou`` (Cheng et al., "Boundary IoU", CVPR 2021): IoU of the mask
  bands within ``d`` pixels of each contour, ``d = max(1, round(ratio × image
  diagonal))`` with ratio 0.02; the image edge counts as contour (zero padding),
  as in the reference implementation.
* ``boundary_f`` (DAVIS F): contour precision/recall with a matching tolerance
  of ``ceil(0.008 × diagonal)`` pixels (a disk), F = 2PR/(P+R); both contours
  empty -> 1.0, one empty -> 0.0.
* Presence: per frame, "predicted" = the method returned a segment, "present" =
  the ground truth has pixels. A segment on a frame without the object is a false
  positive; no segment on a frame with it is a false negative. With no
  predictions at all precision is 1.0 (no false alarm); with no positives recall
  is 1.0 (nothing to miss).
* IoU precision/recall (personalised segmentation): a frame is a true positive
  when predicted, present and IoU ≥ 0.5; precision = TP / frames with a
  prediction, recall = TP / frames with the object.
* Outcomes (``classify_outcome``): every (frame, personal object) falls in
  exactly one of ``OUTCOMES`` — what went right or wrong, not only how much;
  ``lookalike_as_mine`` flags a prediction that lies mostly on a look-alike of
  the object (needs the all-object ground truth).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError

BOUNDARY_IOU_DILATION_RATIO = 0.02
BOUNDARY_F_TOLERANCE_RATIO = 0.008
IOU_HIT_THRESHOLD = 0.5
COVER_THRESHOLD = 0.5  # "covers half of the object" (recall) and "lies on the object" (precision)
OUTCOMES: tuple[str, ...] = ("right", "spill", "wrong_object", "partial", "miss", "false_alarm", "true_absent")
PRESENT_OUTCOMES: tuple[str, ...] = ("right", "spill", "wrong_object", "partial", "miss")
ABSENT_OUTCOMES: tuple[str, ...] = ("false_alarm", "true_absent")


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool, after checking they are 2-D and the same shape."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise InvalidInputError(f"masks must be H×W, got prediction {pred.shape} and ground truth {gt.shape}")
    if pred.shape != gt.shape:
        raise InvalidInputError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two ``H×W`` masks (1.0 when both are empty)."""
    p, g = _pair(pred, gt)
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & g)) / union


def miou(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray]) -> float:
    """Mean of ``iou`` over pairs of masks (InvalidInputError if there are none)."""
    values = [iou(p, g) for p, g in zip(preds, gts, strict=True)]
    if not values:
        raise InvalidInputError("miou needs at least one pair of masks")
    return float(np.mean(values))


def _diagonal(shape: tuple[int, ...]) -> float:
    return math.hypot(shape[0], shape[1])


def boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of ``mask`` within ``width`` pixels of its contour (image edge counts as contour); ``H×W`` bool."""
    m = np.asarray(mask).astype(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(padded, kernel, iterations=max(1, int(width)))[1:-1, 1:-1]
    return (m > 0) & (eroded == 0)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = BOUNDARY_IOU_DILATION_RATIO) -> float:
    """Boundary IoU of two ``H×W`` masks (Cheng et al.); 1.0 when both are empty, 0.0 when one is."""
    p, g = _pair(pred, gt)
    width = max(1, round(dilation_ratio * _diagonal(p.shape)))
    return iou(boundary_band(p, width), boundary_band(g, width))


def contour(mask: np.ndarray) -> np.ndarray:
    """One-pixel contour of a mask: foreground pixels with a 4-neighbour outside it; ``H×W`` bool.

    Pixels on the image edge are contour only where the mask itself ends (the
    border is not treated as background), so a mask cut by the frame is not
    credited with a boundary the object does not have.
    """
    m = np.asarray(mask).astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(m, cross, borderType=cv2.BORDER_REPLICATE)
    return (m > 0) & (eroded == 0)


@dataclass(frozen=True)
class BoundaryScore:
    """DAVIS contour accuracy: ``precision``, ``recall`` and their harmonic mean ``f``."""

    precision: float
    recall: float
    f: float


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance_ratio: float = BOUNDARY_F_TOLERANCE_RATIO
               ) -> BoundaryScore:
    """DAVIS boundary F-measure of two ``H×W`` masks, matching contours within a tolerance disk."""
    p, g = _pair(pred, gt)
    radius = max(1, math.ceil(tolerance_ratio * _diagonal(p.shape)))
    bp, bg = contour(p), contour(g)
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 and n_g == 0:
        return BoundaryScore(1.0, 1.0, 1.0)
    if n_p == 0:
        return BoundaryScore(1.0, 0.0, 0.0)
    if n_g == 0:
        return BoundaryScore(0.0, 1.0, 0.0)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near_g = cv2.dilate(bg.astype(np.uint8), disk) > 0
    near_p = cv2.dilate(bp.astype(np.uint8), disk) > 0
    precision = float(np.count_nonzero(bp & near_g)) / n_p
    recall = float(np.count_nonzero(bg & near_p)) / n_g
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return BoundaryScore(precision, recall, f)


@dataclass(frozen=True)
class JandF:
    """DAVIS region similarity ``j`` (IoU), contour accuracy ``f`` and their mean ``jf``."""

    j: float
    f: float
    jf: float


def j_and_f(pred: np.ndarray, gt: np.ndarray) -> JandF:
    """DAVIS J (region IoU) and F (boundary F-measure) of two ``H×W`` masks, and their mean."""
    j = iou(pred, gt)
    f = boundary_f(pred, gt).f
    return JandF(j, f, (j + f) / 2.0)


@dataclass(frozen=True)
class PresenceCounts:
    """Frame counts of a presence decision: true/false positives/negatives."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when the object never appears."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def presence_counts(predicted: Sequence[bool], present: Sequence[bool]) -> PresenceCounts:
    """Count presence outcomes over frames: ``predicted[i]`` a segment was returned, ``present[i]`` gt has pixels."""
    pr = np.asarray(predicted, bool)
    gt = np.asarray(present, bool)
    if pr.shape != gt.shape or pr.ndim != 1:
        raise InvalidInputError(f"presence sequences must be 1-D and equally long, got {pr.shape} and {gt.shape}")
    return PresenceCounts(tp=int(np.sum(pr & gt)), fp=int(np.sum(pr & ~gt)), fn=int(np.sum(~pr & gt)),
                          tn=int(np.sum(~pr & ~gt)))


def presence_precision_recall(predicted: Sequence[bool], present: Sequence[bool]) -> tuple[float, float]:
    """Presence ``(precision, recall)`` over frames (see ``presence_counts``)."""
    counts = presence_counts(predicted, present)
    return counts.precision, counts.recall


def iou_precision_recall(ious: Sequence[float], predicted: Sequence[bool], present: Sequence[bool],
                         threshold: float = IOU_HIT_THRESHOLD) -> tuple[float, float]:
    """Personalised-segmentation ``(precision, recall)``: a hit is a predicted, present frame with IoU ≥ threshold.

    Precision divides hits by frames with a prediction, recall by frames with
    the object; each is 1.0 when its denominator is zero.
    """
    values = np.asarray(ious, float)
    pr = np.asarray(predicted, bool)
    gt = np.asarray(present, bool)
    if not values.shape == pr.shape == gt.shape or values.ndim != 1:
        raise InvalidInputError(f"ious, predicted and present must be 1-D and equally long, got "
                                f"{values.shape}, {pr.shape}, {gt.shape}")
    hits = int(np.sum(pr & gt & (values >= threshold)))
    n_pred, n_present = int(pr.sum()), int(gt.sum())
    return (hits / n_pred if n_pred else 1.0), (hits / n_present if n_present else 1.0)


def classify_outcome(pred: np.ndarray | None, gt: np.ndarray) -> str:
    """What happened to one personal object in one frame: one of ``OUTCOMES``.

    ``pred`` is the ``H×W`` bool mask predicted for the object (None or empty:
    nothing predicted), ``gt`` its ``H×W`` bool ground truth. With
    precision = |pred ∩ gt| / |pred| and recall = |pred ∩ gt| / |gt|, tried in
    this order:

    * object absent (``gt`` empty): ``false_alarm`` if something is
      predicted, else ``true_absent``;
    * present, nothing predicted: ``miss``;
    * IoU ≥ 0.5: ``right``;
    * recall ≥ 0.5: ``spill`` — the mask covers most of the object but runs
      onto a neighbour or the background (also when precision ≥ 0.5 too: both
      ≥ 0.5 with IoU < 0.5 is a mask too large in some places and short in
      others, and its failure is leaking, not the wrong object);
    * precision ≥ 0.5: ``partial`` — the mask sits on the object but covers
      less than half of it. This bucket is not among the six the issue names
      (right, spill, wrong object, miss, false alarm, true absent): such a
      frame is neither a spill (it hardly leaves the object) nor a wrong
      object (most of it is on the object), and counting it as either would
      blame the wrong failure, so it is kept apart;
    * otherwise ``wrong_object``: most predicted pixels lie off the object (on
      a look-alike, other clutter or background) and it covers under half of
      the object. Whether that off-object part is a look-alike is what
      ``lookalike_as_mine`` tells.
    """
    g = np.asarray(gt).astype(bool, copy=False)
    if g.ndim != 2:
        raise InvalidInputError(f"ground truth must be H×W, got {g.shape}")
    if pred is None:
        p = np.zeros_like(g)
    else:
        p, g = _pair(pred, g)
    n_pred, n_gt = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    if n_gt == 0:
        return "false_alarm" if n_pred else "true_absent"
    if n_pred == 0:
        return "miss"
    inter = int(np.count_nonzero(p & g))
    if inter / (n_pred + n_gt - inter) >= IOU_HIT_THRESHOLD:
        return "right"
    if inter / n_gt >= COVER_THRESHOLD:
        return "spill"
    if inter / n_pred >= COVER_THRESHOLD:
        return "partial"
    return "wrong_object"


def lookalike_as_mine(pred: np.ndarray | None, lookalike: np.ndarray) -> bool:
    """Whether most pixels of the prediction (more than half) lie on a look-alike of the object.

    ``pred`` ``H×W`` bool (None or empty: False), ``lookalike`` ``H×W`` bool:
    the pixels of the object's look-alikes (from an all-object ground truth).
    Counted whether or not the object itself is in view: a look-alike taken
    for "mine" while the real one is away is the same mistake.
    """
    if pred is None:
        return False
    p, look = _pair(pred, lookalike)
    n_pred = int(np.count_nonzero(p))
    return n_pred > 0 and 2 * int(np.count_nonzero(p & look)) > n_pred


@dataclass
class OutcomeCounts:
    """How many (frame, object) pairs fell in each outcome of ``classify_outcome``.

    ``lookalike_as_mine`` counts pairs whose prediction lay mostly on a
    look-alike of the object, out of ``lookalike_scored`` pairs that had an
    all-object ground truth to tell.
    """

    right: int = 0
    spill: int = 0
    wrong_object: int = 0
    partial: int = 0
    miss: int = 0
    false_alarm: int = 0
    true_absent: int = 0
    lookalike_as_mine: int = 0
    lookalike_scored: int = 0

    def add(self, outcome: str, on_lookalike: bool | None = None) -> None:
        """Count one pair: its outcome, and whether it lay on a look-alike (None: no all-object map)."""
        if outcome not in OUTCOMES:
            raise InvalidInputError(f"unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
        setattr(self, outcome, getattr(self, outcome) + 1)
        if on_lookalike is not None:
            self.lookalike_scored += 1
            self.lookalike_as_mine += bool(on_lookalike)

    def merge(self, other: OutcomeCounts) -> None:
        """Add ``other``'s counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def present(self) -> int:
        """Pairs where the object was in view."""
        return sum(getattr(self, k) for k in PRESENT_OUTCOMES)

    @property
    def absent(self) -> int:
        """Pairs where the object was out of view."""
        return sum(getattr(self, k) for k in ABSENT_OUTCOMES)

    def fractions(self) -> dict[str, float]:
        """Each outcome as a fraction: in-view outcomes of the in-view pairs, ``false_alarm`` and
        ``true_absent`` of the out-of-view pairs, ``lookalike_as_mine`` of ``lookalike_scored``
        (NaN where the denominator is zero)."""
        def share(n: int, total: int) -> float:
            return n / total if total else float("nan")

        out = {k: share(getattr(self, k), self.present) for k in PRESENT_OUTCOMES}
        out.update({k: share(getattr(self, k), self.absent) for k in ABSENT_OUTCOMES})
        out["lookalike_as_mine"] = share(self.lookalike_as_mine, self.lookalike_scored)
        return out

    def as_dict(self) -> dict[str, int]:
        """The counts by name (plus ``present`` and ``absent``)."""
        return {**asdict(self), "present": self.present, "absent": self.absent}


@dataclass(frozen=True)
class FrameScore:
    """Every per-frame number of one concept in one frame.

    ``outcome`` is ``classify_outcome``'s verdict; ``lookalike_as_mine`` is
    None when no look-alike map was given.
    """

    iou: float
    boundary_iou: float
    j: float
    f: float
    predicted: bool
    present: bool
    outcome: str = ""
    lookalike_as_mine: bool | None = None


def score_frame(pred: np.ndarray, gt: np.ndarray, lookalike: np.ndarray | None = None) -> FrameScore:
    """All per-frame metrics of a predicted ``H×W`` mask against the ground truth mask.

    ``lookalike`` (``H×W`` bool, optional): pixels of the object's look-alikes,
    for ``FrameScore.lookalike_as_mine``.
    """
    p, g = _pair(pred, gt)
    j = iou(p, g)
    return FrameScore(iou=j, boundary_iou=boundary_iou(p, g), j=j, f=boundary_f(p, g).f,
                      predicted=bool(p.any()), present=bool(g.any()), outcome=classify_outcome(p, g),
                      lookalike_as_mine=None if lookalike is None else lookalike_as_mine(p, lookalike))


def count_outcomes(scores: Iterable[FrameScore]) -> OutcomeCounts:
    """``OutcomeCounts`` of frame scores (their ``outcome`` and ``lookalike_as_mine``)."""
    counts = OutcomeCounts()
    for s in scores:
        counts.add(s.outcome, s.lookalike_as_mine)
    return counts


def summarize(scores: Sequence[FrameScore]) -> dict[str, float | int | dict]:
    """Aggregate per-frame scores of one concept (or several, pooled).

    Segmentation quality (``miou``, ``boundary_iou``, ``j``, ``f``, ``jf``) is
    averaged over frames where the object is present (NaN if it never is);
    ``miou_all_frames`` also counts absent frames (1.0 when correctly empty,
    0.0 for a false positive). Presence and IoU precision/recall as above.
    ``outcomes`` holds the ``OutcomeCounts`` (with ``present``/``absent``),
    ``outcome_fractions`` their ``fractions()``; ``wrong_object_fraction`` is
    the share of in-view frames that went to the wrong object.
    """
    if not scores:
        raise InvalidInputError("summarize needs at least one frame score")
    present = np.array([s.present for s in scores])
    predicted = np.array([s.predicted for s in scores])
    ious = np.array([s.iou for s in scores])

    def mean_present(values: Iterable[float]) -> float:
        arr = np.asarray(list(values), float)[present]
        return float(arr.mean()) if arr.size else float("nan")

    counts = presence_counts(predicted, present)
    iou_p, iou_r = iou_precision_recall(ious, predicted, present)
    j = mean_present(s.j for s in scores)
    f = mean_present(s.f for s in scores)
    outcomes = count_outcomes(scores)
    outcome_fractions = outcomes.fractions()
    return {
        "frames": len(scores),
        "frames_present": int(present.sum()),
        "miou": mean_present(ious),
        "miou_all_frames": float(ious.mean()),
        "boundary_iou": mean_present(s.boundary_iou for s in scores),
        "j": j,
        "f": f,
        "jf": (j + f) / 2.0,
        "presence_precision": counts.precision,
        "presence_recall": counts.recall,
        **{f"presence_{k}": v for k, v in asdict(counts).items()},
        "iou_precision": iou_p,
        "iou_recall": iou_r,
        "wrong_object_fraction": outcome_fractions["wrong_object"],
        "outcomes": outcomes.as_dict(),
        "outcome_fractions": outcome_fractions,
    }
