"""Scripted motion of scene objects: a smooth wander with an exit interval, and a companion that keeps close.

A ``Track`` wanders around a home point (two sines per axis), changes scale,
wobbles or spins in the image plane and may leave the view through a side edge
for an interval. A ``Companion`` (hard scenes) rides beside a leader track: in
some frames it touches the leader (its silhouette just overlaps the leader's),
in others it drifts up to ``apart`` pixels away, circling slowly round it.
Motion is defined per nominal ``PERIOD``-frame period, so speed does not depend
on sequence length; a spin is defined over the whole sequence. Positions are
``(x, y)`` image pixels, angles degrees counter-clockwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from perovss_ros.sim.sprites import Sprite, placement

PERIOD = 60.0
# Contact is searched on silhouettes shrunk so the leader's canvas is at most this many pixels wide.
_CONTACT_WORK_PX = 128.0
_CONTACT_STEPS = 12

Pose = tuple[tuple[float, float], float, float]


@dataclass
class Track:
    """Scripted motion of one object: a smooth wander around a home point, plus an exit interval.

    ``label`` is the object's id in the personal ground truth (0 for a
    look-alike), ``object_id`` its id in the all-object ground truth.
    ``spin_per_frame`` (degrees) turns the object steadily on top of the
    ``rot_amp`` wobble.
    """

    sprite: Sprite
    label: int
    home: tuple[float, float]
    amp: np.ndarray  # 2×2: (x, y) × two sine components, pixels
    freq: np.ndarray  # 2×2 cycles per period
    phase: np.ndarray  # 2×2 radians
    scale0: float  # sprite canvas pixels -> image pixels at scale factor 1
    scale_amp: float
    scale_freq: float
    scale_phase: float
    rot_amp: float
    rot_freq: float
    rot_phase: float
    absent: tuple[int, int] | None = None
    exit_x: float = 0.0
    ramp: int = 1
    object_id: int = 0
    spin_per_frame: float = 0.0
    spin_phase: float = 0.0

    def course(self, i: int) -> Pose:
        """``(center, scale, angle)`` in frame ``i`` had the object never left the view."""
        u = 2.0 * math.pi * i / PERIOD
        wave = (self.amp * np.sin(self.freq * u + self.phase)).sum(axis=1)
        x, y = self.home[0] + wave[0], self.home[1] + wave[1]
        scale = self.scale0 * (1.0 + self.scale_amp * math.sin(self.scale_freq * u + self.scale_phase))
        angle = self.rot_amp * math.sin(self.rot_freq * u + self.rot_phase)
        if self.spin_per_frame:
            angle = (angle + self.spin_phase + self.spin_per_frame * i) % 360.0
        return (float(x), float(y)), float(scale), float(angle)

    def pose(self, i: int) -> Pose | None:
        """``(center, scale, angle)`` in frame ``i``, or None while out of view."""
        (x, y), scale, angle = self.course(i)
        if self.absent is not None:
            start, end = self.absent
            if start <= i < end:
                return None
            gone = 0.0
            if start - self.ramp <= i < start:
                gone = (i - (start - self.ramp) + 1) / (self.ramp + 1)
            elif end <= i < end + self.ramp:
                gone = (end + self.ramp - i) / (self.ramp + 1)
            gone = gone * gone * (3.0 - 2.0 * gone)  # smoothstep: ease out of and back into view
            x = (1.0 - gone) * x + gone * self.exit_x
        return (float(x), float(y)), scale, angle


def _silhouette(sprite: Sprite, center: tuple[float, float], scale: float, angle: float, size: int) -> np.ndarray:
    """``size×size`` bool: where ``sprite`` placed at ``center`` covers (alpha ≥ 0.5)."""
    alpha = np.ascontiguousarray(sprite.rgba[..., 3])
    warped = cv2.warpAffine(alpha, placement(sprite, center, scale, angle), (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return warped >= 0.5


def contact_distance(leader: Sprite, leader_scale: float, leader_angle: float, sprite: Sprite, scale: float,
                     angle: float, bearing: float) -> float:
    """Centre distance (image pixels) along ``bearing`` (radians, image axes) at which two sprites just touch.

    ``sprite`` is moved out from the leader's centre along the bearing; the
    distance returned separates "silhouettes overlap" from "they do not" (a
    bisection, so for concave outlines it is one such boundary, not always the
    outermost). Accurate to about one pixel of a copy where the leader's canvas
    is ``_CONTACT_WORK_PX`` wide.
    """
    lh, lw = leader.hw
    sh, sw = sprite.hw
    reach_leader = 0.5 * math.hypot(lh, lw) * leader_scale
    reach = reach_leader + 0.5 * math.hypot(sh, sw) * scale  # beyond this the canvases cannot meet
    work = min(1.0, _CONTACT_WORK_PX / max(2.0 * reach_leader, 1.0))
    size = math.ceil(2.0 * reach_leader * work) + 2
    mid = size / 2.0
    mine = _silhouette(leader, (mid, mid), leader_scale * work, leader_angle, size)
    direction = (math.cos(bearing), math.sin(bearing))

    def overlaps(t: float) -> bool:
        center = (mid + t * work * direction[0], mid + t * work * direction[1])
        return bool(np.any(mine & _silhouette(sprite, center, scale * work, angle, size)))

    lo, hi = 0.0, reach
    if not overlaps(lo):
        return 0.0
    for _ in range(_CONTACT_STEPS):
        t = 0.5 * (lo + hi)
        if overlaps(t):
            lo = t
        else:
            hi = t
    return 0.5 * (lo + hi)


@dataclass
class Companion:
    """A look-alike that stays beside ``leader``: touching in some frames, a little apart in others.

    ``body`` gives the companion's own scale and rotation (its wander is not
    used). Its bearing from the leader swings through ``bearing_sweep``
    (radians) centred on ``bearing0`` over ``num_frames``; the gap opens and closes
    ``cycles`` times: ``apart × max(0, sin(...) + 0.3)``, minus ``overlap``
    pixels, so about 40 % of the frames have the two in contact. It follows
    the leader's course, not its exit: while the leader is out of view the
    companion stays where the leader would have been.
    """

    body: Track
    leader: Track
    bearing0: float
    bearing_sweep: float
    cycles: float
    cycle_phase: float
    apart: float
    overlap: float
    num_frames: int

    @property
    def sprite(self) -> Sprite:
        """The companion's sprite."""
        return self.body.sprite

    @property
    def label(self) -> int:
        """Its id in the personal ground truth (0: a companion is a look-alike)."""
        return self.body.label

    @property
    def object_id(self) -> int:
        """Its id in the all-object ground truth."""
        return self.body.object_id

    def pose(self, i: int) -> Pose:
        """``(center, scale, angle)`` in frame ``i`` (a companion never leaves the view on purpose)."""
        (lx, ly), leader_scale, leader_angle = self.leader.course(i)
        _, scale, angle = self.body.course(i)
        progress = i / max(self.num_frames, 1)
        bearing = self.bearing0 + self.bearing_sweep * (progress - 0.5)
        touch = contact_distance(self.leader.sprite, leader_scale, leader_angle, self.sprite, scale, angle, bearing)
        wave = math.sin(2.0 * math.pi * self.cycles * progress + self.cycle_phase) + 0.3
        distance = max(0.0, touch + self.apart * max(0.0, wave) - self.overlap)
        return (lx + distance * math.cos(bearing), ly + distance * math.sin(bearing)), scale, angle
