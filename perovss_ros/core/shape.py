"""Outline shape: a rotation- and scale-invariant signature of a mask, and how far two are apart.

Colour and surface pattern live in the feature grid; the outline does not (cells inside a mug and
inside a box of the same colour and pattern are the same). A mask's outer contour is resampled
at ``SAMPLES`` points evenly spaced along its length; the distance of each to the centroid,
divided by their mean, is a profile whose Fourier magnitudes ``|F_1| … |F_HARMONICS|`` do not
change when the object turns in the image plane (a turn shifts the profile's start, i.e. only
the phases) or changes size (the profile is normalised). Elongation shows in ``F_2``, corners
in ``F_4``, a handle or a neck in the odd harmonics. Solidity (area over convex-hull area) is
appended for concavities the profile smooths over.

``shape_distance`` is the Euclidean distance between signatures. What counts as "the same
outline" is calibrated per concept at teach time, from the spread of its own shots and the
outlines of the look-alikes seen beside them (``core/decide.py``), not fixed here.

A mask the image border cuts has part of the border as its outline. ``cut_reference`` finds the
placement (turn, scale, shift) of a reference silhouette whose part inside the image fits it
best, so its outline can be compared with the reference cut the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SAMPLES = 128
HARMONICS = 8
MIN_PIXELS = 30


def shape_signature(mask: np.ndarray) -> np.ndarray | None:
    """Signature (``HARMONICS + 1`` float32) of an ``H×W bool`` mask's largest outer contour.

    None when the mask is empty or too small to have a shape.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if int(m.sum()) < MIN_PIXELS:
        return None
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    area = float(cv2.contourArea(contour))
    if area < MIN_PIXELS or len(contour) < 8:
        return None
    pts = contour[:, 0, :].astype(np.float64)
    closed = np.vstack([pts, pts[:1]])
    step = np.hypot(*np.diff(closed, axis=0).T)
    length = np.concatenate([[0.0], np.cumsum(step)])
    at = np.linspace(0.0, length[-1], SAMPLES, endpoint=False)
    xs = np.interp(at, length, closed[:, 0])
    ys = np.interp(at, length, closed[:, 1])
    moments = cv2.moments(contour)
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    profile = np.hypot(xs - cx, ys - cy)
    profile = profile / max(float(profile.mean()), 1e-9)
    spectrum = np.abs(np.fft.rfft(profile))[1:HARMONICS + 1] / SAMPLES
    hull = float(cv2.contourArea(cv2.convexHull(contour)))
    return np.concatenate([spectrum, [area / max(hull, 1.0)]]).astype(np.float32)


def shape_distance(signature: np.ndarray, references: np.ndarray) -> float:
    """Smallest Euclidean distance of a signature to ``S×D`` reference signatures (0.0 for none)."""
    refs = np.atleast_2d(np.asarray(references, np.float32))
    if refs.shape[0] == 0:
        return 0.0
    return float(np.linalg.norm(refs - signature[None], axis=1).min())


# A part of a split mask must hold at least this share of its pixels.
MIN_PART = 0.15
# Cores: pixels at least these fractions of the deepest inside distance (the deeper, the wider
# the neck between two blobs may be and still split them).
CORE_DEPTHS = (0.5, 0.65, 0.8)


def split_touching(mask: np.ndarray) -> list[list[np.ndarray]]:
    """Ways to split an ``H×W bool`` mask that is two or more blobs touching through necks.

    For each depth in ``CORE_DEPTHS`` the cores of the mask (pixels at least that fraction of the
    deepest inside distance from the boundary) are found; when there are several, every pixel
    goes to its nearest core, giving one split (a list of part masks). A single blob with a
    handle or a neck has one core at every depth: no split.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    ys, xs = np.nonzero(m)
    if xs.size < MIN_PIXELS:
        return []
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.pad(m[y0:y1, x0:x1], 1)
    depth = cv2.distanceTransform(crop, cv2.DIST_L2, 5)
    total = int(crop.sum())
    splits, seen = [], set()
    for fraction in CORE_DEPTHS:
        cores = (depth >= fraction * float(depth.max())).astype(np.uint8)
        count, _ = cv2.connectedComponents(cores, connectivity=8)
        if count <= 2 or count in seen:
            continue
        seen.add(count)
        _, nearest = cv2.distanceTransformWithLabels(1 - cores, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
        parts = []
        for label in np.unique(nearest[cores > 0]):
            part = (nearest == label) & (crop > 0)
            if part.sum() >= MIN_PART * total:
                full = np.zeros(m.shape, bool)
                full[y0:y1, x0:x1] = part[1:-1, 1:-1]
                parts.append(full)
        if len(parts) > 1:
            splits.append(parts)
    return splits


# Thin strips (``without_strips``): the opening's diameter is this share of the mask's square-root area
# (11 px across an object of 120×120 px); the result counts when it drops at least MIN_STRIP and keeps
# at least MIN_STRIP_KEPT of the mask.
STRIP_WIDTH = 0.09
MIN_STRIP = 0.005
MIN_STRIP_KEPT = 0.8


def without_strips(mask: np.ndarray) -> np.ndarray | None:
    """The ``H×W bool`` mask without thin strips along its edge: opened at a size relative to its own
    (``STRIP_WIDTH``), its largest component. A decode that ran a few pixels along a touching
    neighbour's edge has an outline that is mostly the strip's, whatever the object's shape. None when
    that changes too little or too much (``MIN_STRIP``, ``MIN_STRIP_KEPT``)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    ys, xs = np.nonzero(m)
    if xs.size < MIN_PIXELS:
        return None
    side = 2 * round(STRIP_WIDTH * np.sqrt(xs.size) / 2) + 1
    if side < 3:
        return None
    y0, x0 = max(0, ys.min() - 1), max(0, xs.min() - 1)
    crop = m[y0:ys.max() + 2, x0:xs.max() + 2]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.morphologyEx(crop, cv2.MORPH_OPEN, kernel),
                                                               connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    kept = int(stats[largest, cv2.CC_STAT_AREA])
    if kept > (1.0 - MIN_STRIP) * xs.size or kept < MIN_STRIP_KEPT * xs.size:
        return None
    out = np.zeros(m.shape, bool)
    out[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = labels == largest
    return out


def outline_options(mask: np.ndarray) -> list[np.ndarray]:
    """The mask itself and every part of every ``split_touching`` split of it (``H×W bool`` each)."""
    whole = np.asarray(mask, bool)
    return [whole, *(part for split in split_touching(whole) for part in split)]


# Border-cut masks (``cut_reference``): the silhouettes are searched coarse to fine. The coarse pass
# works at COARSE_SIZE pixels across (a silhouette's longest side at scale 1), turns in COARSE_TURN
# steps and the scales COARSE_SCALES (objects seen at about the size they were taught, ±40 %); the
# fine pass at FINE_SIZE pixels around the best coarse placement.
COARSE_SIZE = 20
COARSE_TURN = 20.0
COARSE_SCALES = (0.75, 0.9, 1.07, 1.28)
FINE_SIZE = 40
FINE_TURNS = (-10.0, -5.0, 0.0, 5.0, 10.0)
FINE_SCALES = (0.92, 1.0, 1.08)


def box_of(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the ``H×W bool`` mask's box; None when it is empty."""
    ys, xs = np.nonzero(np.asarray(mask, bool))
    if xs.size == 0:
        return None
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)


def silhouette(mask: np.ndarray) -> np.ndarray | None:
    """The ``H×W bool`` mask cropped to its box (``h×w bool``); None when it is empty."""
    box = box_of(mask)
    return None if box is None else np.asarray(mask, bool)[box].copy()


def _turned(shape: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """``shape`` (2-D float32) turned by ``angle`` degrees and scaled by ``scale`` about its centre, on a
    square canvas that holds all of it (side ``_side``)."""
    h, w = shape.shape
    side = _side(shape.shape, scale)
    turn = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, scale)
    turn[:, 2] += (side - 1) / 2.0 - np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    return cv2.warpAffine(shape, turn, (side, side), flags=cv2.INTER_LINEAR)


def _side(shape_hw: tuple[int, int], scale: float) -> int:
    return int(np.ceil(np.hypot(*shape_hw) * scale)) + 2


def _fit(mask: np.ndarray, shape: np.ndarray, down: float, placements: list[tuple[float, float]]
         ) -> tuple[float, float, float, float, float]:
    """Best ``(IoU, angle, scale, centre x, centre y)`` (centre in image pixels) of the ``h×w bool`` ``shape``
    over ``(angle, scale)`` placements and every shift, at ``1/down`` of the ``H×W bool`` mask's size;
    the part of a placement outside the image does not count."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    size = (max(1, round(shape.shape[1] / down)), max(1, round(shape.shape[0] / down)))
    ref = cv2.resize(shape.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    reach = _side(ref.shape, max(s for _, s in placements))
    x0, x1 = int(xs.min() / down) - reach, int(xs.max() / down) + 1 + reach
    y0, y1 = int(ys.min() / down) - reach, int(ys.max() / down) + 1 + reach
    small_w, small_h = max(1, round(w / down)), max(1, round(h / down))
    small = cv2.resize(mask.astype(np.float32), (small_w, small_h), interpolation=cv2.INTER_AREA)
    window = np.zeros((y1 - y0, x1 - x0), np.float32)
    sy0, sy1, sx0, sx1 = max(0, y0), min(small_h, y1), max(0, x0), min(small_w, x1)
    window[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = small[sy0:sy1, sx0:sx1]
    inside = np.zeros_like(window)
    inside[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = 1.0
    area = float(small.sum())
    best = (-1.0, 0.0, 1.0, 0.0, 0.0)
    for angle, scale in placements:
        template = _turned(ref, angle, scale)
        side = template.shape[0]
        if side >= window.shape[0] or side >= window.shape[1]:
            continue
        overlap = cv2.matchTemplate(window, template, cv2.TM_CCORR)
        shown = cv2.matchTemplate(inside, template, cv2.TM_CCORR)
        iou = overlap / np.maximum(area + shown - overlap, 1e-6)
        at = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if float(iou[at]) > best[0]:
            best = (float(iou[at]), angle, scale, (x0 + at[1] + (side - 1) / 2.0) * down,
                    (y0 + at[0] + (side - 1) / 2.0) * down)
    return best


@dataclass(frozen=True)
class Placement:
    """Where ``cut_reference`` placed a silhouette: its ``index`` in the list, the ``2×3`` affine ``matrix``
    from silhouette pixels to image pixels, the placed ``mask`` (``H×W bool``, cut by the image border)
    and that mask's ``iou`` with the mask it was fitted to."""

    index: int
    matrix: np.ndarray
    mask: np.ndarray
    iou: float


def cut_reference(mask: np.ndarray, silhouettes: tuple[np.ndarray, ...] | list[np.ndarray]) -> Placement | None:
    """The placement of a reference silhouette that a border-cut mask looks like, cut by the same border.

    A mask the image border cuts shows only part of its object, so its outline cannot be compared
    with whole reference outlines. Each ``h×w bool`` silhouette (a shot's mask cropped to its box) is
    turned, scaled and shifted over the ``H×W bool`` ``mask`` (coarse, then fine: ``COARSE_*``,
    ``FINE_*``); the placement whose part inside the image has the highest IoU with the mask wins:
    the reference as it would look cut where the mask is cut. None without a usable silhouette or mask.
    """
    m = np.asarray(mask, bool)
    h, w = m.shape
    usable = [(i, s) for i, s in enumerate(silhouettes) if s is not None and s.sum() >= MIN_PIXELS]
    if int(m.sum()) < MIN_PIXELS or not usable:
        return None
    longest = max(max(s.shape) for _, s in usable)
    coarse = [(a, s) for s in COARSE_SCALES for a in np.arange(0.0, 360.0, COARSE_TURN)]
    found = [(_fit(m, shape, max(1.0, longest / COARSE_SIZE), coarse), i, shape) for i, shape in usable]
    (_, angle, scale, _, _), index, shape = max(found, key=lambda item: item[0][0])
    fine = [(angle + da, scale * ds) for ds in FINE_SCALES for da in FINE_TURNS]
    iou, angle, scale, cx, cy = _fit(m, shape, max(1.0, longest / FINE_SIZE), fine)
    if iou <= 0.0:
        return None
    sh, sw = shape.shape
    matrix = cv2.getRotationMatrix2D(((sw - 1) / 2.0, (sh - 1) / 2.0), angle, scale)
    matrix[:, 2] += np.array([cx, cy]) - np.array([(sw - 1) / 2.0, (sh - 1) / 2.0])
    placed = cv2.warpAffine(shape.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST) > 0
    if not placed.any():
        return None
    return Placement(index=index, matrix=matrix, mask=placed,
                     iou=float((placed & m).sum() / max(int((placed | m).sum()), 1)))
