"""Following concepts frame to frame (PerSAM's video variant: last box, expanded, and its centre).

A concept seen in the previous frame is prompted with that frame's mask box, moved by the box
centre's last displacement (constant-velocity prediction, when it was seen in the frame before
too), expanded by ``margin_px`` (``BASE_MARGIN`` pixels at 640 px, scaled with the image's
longest side), and the box centre as an extra positive point. A concept not found in a frame
keeps its track for up to ``coast_frames`` frames (``track_coast_frames``): moved on by its last
motion, the window one margin wider per missed frame; the object hidden for a frame, or turned
down once, is then followed on rather than searched afresh. A track whose predicted box lies
mostly outside the image (the object left the view) ends at once, and so does one that coasted
its frames; the concept is then searched globally again. The last mask found moves on with the
predicted box (``TrackPrompt.last_mask``): what the next frame's mask of the same object should lie on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from perovss_ros.core.matching import tight_box
from perovss_ros.core.types import BoxXYXY

BASE_MARGIN = 10.0
BASE_SIDE = 640.0


class TrackPrompt(NamedTuple):
    """What the tracker tells the next frame: ``box`` (the predicted box expanded by the margin, the
    search window), its ``centre`` (an extra positive point) and ``predicted`` (the predicted box
    itself, to compare the new mask with; None when unknown). Boxes XYXY pixels. ``missed``: frames
    the track has coasted (0: the concept was found in the last frame). ``last_mask``: the last
    ``H×W bool`` mask found, moved with its box onto ``predicted`` (None when unknown)."""

    box: BoxXYXY
    centre: tuple[float, float]
    predicted: BoxXYXY | None = None
    missed: int = 0
    last_mask: np.ndarray | None = None


@dataclass
class Track:
    """Last known box of a concept (XYXY pixels), the frame size it was seen in, and its last motion.

    ``velocity``: ``(dx, dy)`` pixels per frame of the box centre between the last two sightings;
    ``missed``: frames since the concept was last found (the track coasts meanwhile); ``mask``: the
    ``H×W bool`` mask it was last found with, whose tight box ``mask_box`` is (None: seeded from a box).
    """

    box: BoxXYXY
    image_hw: tuple[int, int]
    velocity: tuple[float, float] = (0.0, 0.0)
    missed: int = 0
    mask: np.ndarray | None = None
    mask_box: BoxXYXY | None = None

    def predicted_box(self) -> BoxXYXY:
        """The box moved by one frame of its last motion."""
        dx, dy = self.velocity
        return self.box[0] + dx, self.box[1] + dy, self.box[2] + dx, self.box[3] + dy


def margin_px(image_hw: tuple[int, int]) -> float:
    """Box expansion in pixels for an image of ``(H, W)``."""
    return max(2.0, BASE_MARGIN * max(image_hw) / BASE_SIDE)


def expand_box(box: BoxXYXY, image_hw: tuple[int, int], margin: float | None = None) -> BoxXYXY:
    """``box`` grown by ``margin`` pixels on every side (default ``margin_px``), clipped to the image."""
    m = margin_px(image_hw) if margin is None else margin
    h, w = image_hw
    x0, y0, x1, y1 = box
    return max(0.0, x0 - m), max(0.0, y0 - m), min(float(w), x1 + m), min(float(h), y1 + m)


def _mostly_outside(box: BoxXYXY, image_hw: tuple[int, int]) -> bool:
    """Whether less than half of ``box`` lies inside an image of ``(H, W)``."""
    h, w = image_hw
    inside = max(0.0, min(box[2], w) - max(box[0], 0.0)) * max(0.0, min(box[3], h) - max(box[1], 0.0))
    return inside < 0.5 * max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def shifted(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The ``H×W bool`` mask moved by ``(dx, dy)`` pixels (rounded); what leaves the image is dropped."""
    h, w = mask.shape
    x, y = round(float(dx)), round(float(dy))
    out = np.zeros((h, w), bool)
    if abs(x) < w and abs(y) < h:
        out[max(0, y):h + min(0, y), max(0, x):w + min(0, x)] = mask[max(0, -y):h - max(0, y), max(0, -x):w - max(0, x)]
    return out


def box_centre(box: BoxXYXY) -> tuple[float, float]:
    """Centre ``(x, y)`` of an XYXY box."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


class Tracker:
    """Per-concept track state. Not thread-safe by itself: the pipeline serialises access."""

    def __init__(self, coast_frames: int = 0) -> None:
        self.coast_frames = coast_frames
        self._tracks: dict[str, Track] = {}

    def prompt(self, name: str, image_hw: tuple[int, int]) -> TrackPrompt | None:
        """The ``TrackPrompt`` of a concept tracked in a same-size image, or None. A track that missed
        ``k`` frames (coasting) has its window widened by ``k`` more margins."""
        track = self._tracks.get(name)
        if track is None or track.image_hw != tuple(image_hw):
            return None
        box = track.predicted_box()
        moved = None
        if track.mask is not None and track.mask_box is not None:
            moved = shifted(track.mask, box[0] - track.mask_box[0], box[1] - track.mask_box[1])
        return TrackPrompt(expand_box(box, image_hw, margin_px(image_hw) * (1 + track.missed)), box_centre(box), box,
                           track.missed, moved)

    def update(self, name: str, mask: np.ndarray | None) -> None:
        """Record this frame's ``H×W bool`` mask of ``name``. None or empty: not found; the track then
        coasts (moved by its last motion) for up to ``coast_frames`` frames, unless its predicted box is
        mostly outside the image (the object left the view), and is dropped after."""
        box = tight_box(mask) if mask is not None else None
        if box is None:
            old = self._tracks.get(name)
            if old is None or old.missed >= self.coast_frames or _mostly_outside(old.predicted_box(), old.image_hw):
                self._tracks.pop(name, None)
            else:
                self._tracks[name] = Track(box=old.predicted_box(), image_hw=old.image_hw, velocity=old.velocity,
                                           missed=old.missed + 1, mask=old.mask, mask_box=old.mask_box)
            return
        image_hw = (int(mask.shape[0]), int(mask.shape[1]))
        old = self._tracks.get(name)
        velocity = (0.0, 0.0)
        if old is not None and old.image_hw == image_hw:
            (ox, oy), (nx, ny) = box_centre(old.box), box_centre(box)
            velocity = (nx - ox, ny - oy)
        self._tracks[name] = Track(box=box, image_hw=image_hw, velocity=velocity, mask=np.array(mask, bool),
                                   mask_box=box)

    def seed(self, name: str, box: BoxXYXY, image_hw: tuple[int, int]) -> None:
        """Start following ``name`` from a known box (e.g. the teacher's box on the first frame)."""
        self._tracks[name] = Track(box=tuple(float(v) for v in box), image_hw=tuple(image_hw))

    def forget(self, name: str) -> None:
        """Drop the track of ``name``."""
        self._tracks.pop(name, None)

    def reset(self) -> None:
        """Drop every track (next frame searches globally)."""
        self._tracks.clear()

    def tracked(self) -> list[str]:
        """Names currently followed."""
        return list(self._tracks)
