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
"""

from __future__ import annotations

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


def outline_options(mask: np.ndarray) -> list[np.ndarray]:
    """The mask itself and every part of every ``split_touching`` split of it (``H×W bool`` each)."""
    whole = np.asarray(mask, bool)
    return [whole, *(part for split in split_touching(whole) for part in split)]
