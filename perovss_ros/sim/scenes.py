"""Seeded synthetic scenes with personal objects, look-alikes and exact ground truth.

``make_scene(seed, ...)`` draws a short camera sequence with OpenCV: a textured
background (gradient, low-frequency noise, wallpaper/tiles/wood grain, a table
edge, static clutter), personal objects with a distinctive colour and surface
pattern (``my_mug``, ``my_ball``, ...), and look-alike distractors
(``sim/objects.py``). Two difficulties:

* ``easy`` (the scenes perovss was first built on): look-alikes that differ in
  two attributes (``same_shape``: the shape in another colour and pattern;
  ``same_colour``: the colours with another pattern and shape); objects move
  smoothly (translation, scale change ±25 %, rotation of a few degrees).
* ``hard``: look-alikes that differ in exactly one attribute (``only_colour``,
  ``only_pattern``, ``only_shape``; three per personal object by default, up
  to four), every object turns through a full circle or more over the
  sequence and changes size by ±20 %, one look-alike per personal object rides
  beside it and touches it in some frames (``sim/motion.py``), and the
  teaching captures show the objects at arbitrary angles.

In both, a foreground occluder (a pole) sweeps across the view and partially
hides what it passes; each personal object leaves the view through the nearest
side edge for an interval and comes back (sequences of 20 frames or more); the
lighting drifts and sensor noise is added; teaching captures hold every
personal object fully visible and, where they fit, the look-alikes. Ground
truth: ``gt`` holds the instance id of the personal object that owns each pixel
(alpha ≥ 0.5 after compositing), 0 for look-alikes, occluder and background;
``object_gt`` holds every drawn object's own id (personal and look-alike; 0 for
background, clutter and occluder), described by ``Scene.object_ids``;
``class_gt`` holds each pixel's category (the objects' shape words and
``clutter`` for the static background clutter, ``sim/categories.py``). The same
seed and arguments give the same scene; ``easy`` scenes are pixel for pixel
those of earlier versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError, UnknownConceptError
from perovss_ros.core.types import BoxXYXY
from perovss_ros.sim.categories import CLASS_IDS, CLUTTER, NO_CLASS, class_names
from perovss_ros.sim.motion import PERIOD, Companion, Track
from perovss_ros.sim.objects import SceneObject, easy_lookalikes, hard_lookalikes, personal_objects
from perovss_ros.sim.sprites import (
    SHAPES,
    Sprite,
    covered_box,
    hsv_to_rgb,
    make_occluder_sprite,
    make_sprite,
    outline_points,
    place,
    silhouette_box,
)

__all__ = ["DIFFICULTIES", "Scene", "SceneObject", "make_scene", "mask_box"]

DEFAULT_FPS = 10.0
NUM_TEACH_FRAMES = 3
MAX_OBJECTS = len(SHAPES)
MAX_LOOKALIKES = 12
DIFFICULTIES: tuple[str, ...] = ("easy", "hard")
DEFAULT_LOOKALIKES_EASY = 2
HARD_LOOKALIKES_PER_OBJECT = 3
MAX_HARD_LOOKALIKES_PER_OBJECT = 4
MIN_SIZE = (64, 48)
MAX_SIZE = (4096, 4096)
_ABSENT_MIN_FRAMES = 20
# A scene lives in memory (RGB + three uint16 ground-truth maps: 9 bytes per pixel and frame).
_BYTES_PER_PIXEL = 9
MAX_SCENE_BYTES = 8 * 10**9


@dataclass
class Scene:
    """A rendered sequence and its ground truth.

    ``frames``: ``H×W×3`` uint8 RGB; ``gt``: ``H×W`` uint16 instance ids (0 =
    no personal object); ``teach_frames``/``teach_gt``: the three teaching
    captures (every personal object fully visible) and their ids.
    ``absent_intervals`` maps an object name to the ``[start, end)`` frames it
    is scripted out of view (it may also be hidden by occlusion elsewhere;
    ``present`` reads the ground truth). ``visible_fraction`` maps an object
    name to a ``num_frames`` float32 array: its visible pixels over the pixels
    it would cover unoccluded inside the image (0 while out of view), so
    results can be split by occlusion level. ``size`` is ``(W, H)``.

    ``object_gt``/``teach_object_gt``: ``H×W`` uint16 maps in which every
    drawn object, personal or look-alike, has its own id (0 = background,
    clutter, occluder); ``object_ids`` maps each id to its ``SceneObject``
    (``kind``, ``mimics``, ``shape`` — the category word —, ``pattern``,
    ``color``). A personal object's id there equals its ``instance_id``.
    ``difficulty`` is ``"easy"`` or ``"hard"`` (see the module docstring).

    ``class_gt``/``teach_class_gt``: ``H×W`` uint16 category ground truth
    (pixel = class id of what is seen there: each object's shape word, the
    background clutter as ``clutter``; 0 = no class: background, table,
    occluder), with ``class_names`` the class id -> word table (the same in
    every scene, ``sim/categories.py``).
    """

    frames: list[np.ndarray]
    gt: list[np.ndarray]
    objects: list[SceneObject]
    teach_frames: list[np.ndarray]
    teach_gt: list[np.ndarray]
    lookalikes: list[SceneObject]
    seed: int
    size: tuple[int, int]
    fps: float = DEFAULT_FPS
    absent_intervals: dict[str, tuple[int, int]] = field(default_factory=dict)
    visible_fraction: dict[str, np.ndarray] = field(default_factory=dict)
    object_gt: list[np.ndarray] = field(default_factory=list)
    teach_object_gt: list[np.ndarray] = field(default_factory=list)
    object_ids: dict[int, SceneObject] = field(default_factory=dict)
    difficulty: str = "easy"
    class_gt: list[np.ndarray] = field(default_factory=list)
    teach_class_gt: list[np.ndarray] = field(default_factory=list)
    class_names: dict[int, str] = field(default_factory=dict)
    _presence: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @property
    def num_frames(self) -> int:
        """Number of frames in the sequence."""
        return len(self.frames)

    def object(self, name: str) -> SceneObject:
        """The personal object called ``name`` (UnknownConceptError if there is none)."""
        for obj in self.objects:
            if obj.name == name:
                return obj
        names = ", ".join(o.name for o in self.objects)
        raise UnknownConceptError(f"no personal object {name!r} in this scene; it has {names}")

    def presence(self, name: str) -> np.ndarray:
        """``num_frames`` bool: whether any pixel of ``name`` is visible in each frame."""
        if name not in self._presence:
            iid = self.object(name).instance_id
            self._presence[name] = np.array([bool(np.any(g == iid)) for g in self.gt], dtype=bool)
        return self._presence[name]

    def present(self, i: int, name: str) -> bool:
        """Whether object ``name`` is visible (any pixel) in frame ``i``."""
        return bool(self.presence(name)[i])

    def mask(self, i: int, name: str) -> np.ndarray:
        """``H×W`` bool ground-truth mask of ``name`` in frame ``i``."""
        return self.gt[i] == self.object(name).instance_id

    def teach_masks(self, name: str) -> list[np.ndarray]:
        """``H×W`` bool masks of ``name`` in the teaching captures."""
        iid = self.object(name).instance_id
        return [g == iid for g in self.teach_gt]

    def lookalike_ids(self, name: str) -> list[int]:
        """``object_gt`` ids of the look-alikes that mimic personal object ``name``."""
        self.object(name)
        return [oid for oid, obj in self.object_ids.items() if obj.mimics == name]

    def lookalike_mask(self, i: int, name: str) -> np.ndarray:
        """``H×W`` bool: pixels of frame ``i`` on a look-alike of personal object ``name``."""
        return np.isin(self.object_gt[i], self.lookalike_ids(name))

    def teach_boxes(self, name: str) -> list[BoxXYXY]:
        """Tight XYXY boxes of ``name`` in the teaching captures (it is fully visible in each)."""
        boxes = [mask_box(m) for m in self.teach_masks(name)]
        return [b for b in boxes if b is not None]


def mask_box(mask: np.ndarray) -> BoxXYXY | None:
    """Tight XYXY box (inclusive-exclusive pixels) of an ``H×W`` bool mask, or None if it is empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A static textured background, ``H×W×3`` float32 RGB in 0..255, and where its clutter is (``H×W`` bool).

    A pixel is clutter where the clutter shape's coverage is at least one half
    (the same rule as an object's alpha ≥ 0.5); drawing the mask uses no
    random numbers, so the background is what it was before the mask existed.
    """
    hue = float(rng.uniform(0.0, 360.0))
    top = np.asarray(hsv_to_rgb(hue, rng.uniform(0.05, 0.3), rng.uniform(0.55, 0.85)), np.float32)
    bottom = np.asarray(hsv_to_rgb(hue + rng.uniform(-40, 40), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.7)),
                        np.float32)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1.0 - ramp) + bottom * ramp, (height, width, 3)).copy()

    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    kind = int(rng.integers(4))
    if kind == 1:  # wallpaper stripes
        period = float(rng.uniform(10, 28))
        img += (8.0 * np.sign(np.sin(2 * np.pi * xs / period)) + 0 * ys)[..., None]
    elif kind == 2:  # tiles
        step = int(rng.integers(22, 48))
        lines = ((xs.astype(int) % step) < 2) | ((ys.astype(int) % step) < 2)
        img -= 25.0 * lines[..., None]
    elif kind == 3:  # wood grain
        img += (10.0 * np.sin(ys * rng.uniform(0.2, 0.5) + 3.0 * np.sin(xs * rng.uniform(0.01, 0.04))))[..., None]

    # A table surface below a horizon gives the scene a floor/wall split.
    horizon = int(height * rng.uniform(0.55, 0.8))
    table = np.asarray(hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.1, 0.35), rng.uniform(0.3, 0.65)), np.float32)
    img[horizon:] = 0.35 * img[horizon:] + 0.65 * table

    # Static clutter in muted colours.
    clutter = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(3, 8))):
        color = tuple(float(c) for c in hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3),
                                                     rng.uniform(0.3, 0.9)))
        cx, cy = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        r = int(min(width, height) * rng.uniform(0.04, 0.12))
        if rng.random() < 0.5:
            axes, angle = (r, int(r * rng.uniform(0.4, 1.0))), float(rng.uniform(0, 180))
            cv2.ellipse(img, (cx, cy), axes, angle, 0, 360, color, -1, cv2.LINE_AA)
            cv2.ellipse(clutter, (cx, cy), axes, angle, 0, 360, 255, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)
            cv2.rectangle(clutter, (cx - r, cy - r // 2), (cx + r, cy + r // 2), 255, -1)

    low = rng.standard_normal((int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3)).astype(np.float32)
    img += 10.0 * cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.uniform(-5.0, 5.0, (height, width, 1)).astype(np.float32)  # grain
    return np.clip(img, 0.0, 255.0), clutter >= 128


@dataclass(frozen=True)
class _Motion:
    """How objects move in one difficulty: size change (fraction), wobble (degrees), spin (turns per sequence)."""

    scale_amp: tuple[float, float]
    rot_amp: tuple[float, float]
    spin_turns: tuple[float, float] | None = None


_MOTION = {
    "easy": _Motion(scale_amp=(0.15, 0.25), rot_amp=(3.0, 12.0)),
    "hard": _Motion(scale_amp=(0.2, 0.2), rot_amp=(3.0, 12.0), spin_turns=(1.0, 1.6)),
}


def _tracks(rng: np.random.Generator, items: list[tuple[Sprite, int, int]], width: int, height: int,
            display: float, num_frames: int, personal_count: int, motion: _Motion) -> list[Track]:
    """Motion scripts for ``items`` (sprite, label, object id), each wandering in its own cell of a grid."""
    count = len(items)
    cols = max(1, math.ceil(math.sqrt(count * width / height)))
    rows = math.ceil(count / cols)
    cell_w, cell_h = width / cols, height / rows
    cells = rng.permutation(cols * rows)[:count]
    tracks: list[Track] = []
    for k, (sprite, label, object_id) in enumerate(items):
        row, col = divmod(int(cells[k]), cols)
        home = ((col + 0.5) * cell_w, (row + 0.5) * cell_h)
        reach = np.array([max(2.0, 0.5 * cell_w - 0.3 * display), max(2.0, 0.5 * cell_h - 0.3 * display)])
        split = rng.uniform(0.5, 0.8, 2)
        amp = np.stack([reach * split, reach * (1.0 - split)], axis=1)
        absent = None
        ramp = 1
        if k < personal_count and num_frames >= _ABSENT_MIN_FRAMES:
            length = max(3, round(rng.uniform(0.12, 0.2) * num_frames))
            first = int(0.3 * num_frames)
            start = int(rng.integers(first, max(first + 1, int(0.88 * num_frames) - length + 1)))
            absent = (start, min(start + length, num_frames))
            ramp = min(6, max(2, length // 2))
        exit_x = -0.9 * display if home[0] < width / 2 else width + 0.9 * display
        track = Track(
            sprite=sprite, label=label, home=home, amp=amp,
            freq=rng.uniform(0.4, 1.2, (2, 2)), phase=rng.uniform(0, 2 * np.pi, (2, 2)),
            scale0=display / sprite.hw[0], scale_amp=float(rng.uniform(*motion.scale_amp)),
            scale_freq=float(rng.uniform(0.5, 1.2)), scale_phase=float(rng.uniform(0, 2 * np.pi)),
            rot_amp=float(rng.uniform(*motion.rot_amp)), rot_freq=float(rng.uniform(0.3, 1.0)),
            rot_phase=float(rng.uniform(0, 2 * np.pi)), absent=absent, exit_x=exit_x, ramp=ramp,
            object_id=object_id)
        if motion.spin_turns is not None:
            _spin(rng, track, motion, num_frames)
        tracks.append(track)
    return tracks


def _spin(rng: np.random.Generator, track: Track, motion: _Motion, num_frames: int) -> None:
    """Make ``track`` turn steadily, one way or the other, through ``motion.spin_turns`` turns over the sequence."""
    turns = float(rng.uniform(*motion.spin_turns)) * (1.0 if rng.random() < 0.5 else -1.0)
    track.spin_per_frame = 360.0 * turns / max(num_frames, 1)
    track.spin_phase = float(rng.uniform(0.0, 360.0))


def _companions(rng: np.random.Generator, leaders: dict[int, Track], riders: dict[int, tuple[Sprite, int]],
                width: int, height: int, display: float, num_frames: int, motion: _Motion) -> list[Companion]:
    """A companion track for each ``riders[k] = (sprite, object id)`` beside ``leaders[k]``.

    The bearing swings about a direction near the one towards the image
    centre, so the pair mostly stays in view.
    """
    out: list[Companion] = []
    for k, (sprite, object_id) in riders.items():
        leader = leaders[k]
        body = _tracks(rng, [(sprite, 0, object_id)], width, height, display, num_frames, 0, motion)[0]
        inward = math.atan2(height / 2.0 - leader.home[1], width / 2.0 - leader.home[0])
        out.append(Companion(
            body=body, leader=leader, bearing0=inward + float(rng.uniform(-0.6, 0.6)),
            bearing_sweep=float(rng.uniform(0.6, 1.4)) * (1.0 if rng.random() < 0.5 else -1.0),
            cycles=float(rng.uniform(1.0, 2.0)), cycle_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
            apart=0.8 * display, overlap=max(1.5, 0.04 * display), num_frames=num_frames))
    return out


def _teach_layout(rng: np.random.Generator, sprites: list[Sprite], personal_count: int, width: int,
                  height: int, display: float, scale_bias: float, max_angle: float = 8.0,
                  outlines: list[np.ndarray] | None = None) -> list[tuple[int, tuple[float, float], float, float]]:
    """Non-overlapping placements ``(index into sprites, center, scale, angle)`` for a teaching capture.

    Personal objects (the first ``personal_count`` sprites) come first and are always placed.

    Angles are uniform in ``±max_angle`` degrees. With ``outlines`` (each
    sprite's ``outline_points``) objects are kept apart by their silhouettes'
    boxes, else by their whole canvases (which a rotated canvas makes wasteful).
    """
    placed: list[tuple[float, float, float, float]] = []
    out = []
    margin = 2.0
    for k, sprite in enumerate(sprites):
        scale = display / sprite.hw[0] * scale_bias * float(rng.uniform(0.92, 1.08))
        done = False
        while not done:
            for _ in range(200):
                angle = float(rng.uniform(-max_angle, max_angle))
                half = 0.5 * sprite.hw[0] * scale * 1.2
                if 2 * half + 2 * margin > min(width, height):
                    break
                center = (float(rng.uniform(half + margin, width - half - margin)),
                          float(rng.uniform(half + margin, height - half - margin)))
                box = (covered_box(sprite, center, scale, angle) if outlines is None
                       else silhouette_box(outlines[k], sprite, center, scale, angle))
                inside = box[0] >= margin and box[1] >= margin and box[2] <= width - margin \
                    and box[3] <= height - margin
                apart = all(box[2] + margin <= b[0] or b[2] + margin <= box[0] or box[3] + margin <= b[1]
                            or b[3] + margin <= box[1] for b in placed)
                if inside and apart:
                    placed.append(box)
                    out.append((k, center, scale, angle))
                    done = True
                    break
            if not done:
                if k >= personal_count:
                    break  # a look-alike that does not fit is left out of this capture
                scale *= 0.9  # a personal object must appear: try it smaller
    return out


def _check_arguments(width: int, height: int, num_frames: int, num_objects: int, num_lookalikes: int,
                     fps: float, seed: int, difficulty: str) -> None:
    """InvalidInputError naming the first out-of-range argument of ``make_scene``."""
    if difficulty not in DIFFICULTIES:
        raise InvalidInputError(f"difficulty {difficulty!r}: use one of {', '.join(DIFFICULTIES)}")
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise InvalidInputError(f"scene size {(width, height)} out of range: width {MIN_SIZE[0]}..{MAX_SIZE[0]}, "
                                f"height {MIN_SIZE[1]}..{MAX_SIZE[1]}")
    if not 1 <= num_objects <= MAX_OBJECTS:
        raise InvalidInputError(f"num_objects={num_objects}: use 1..{MAX_OBJECTS}")
    most = MAX_LOOKALIKES if difficulty == "easy" else MAX_HARD_LOOKALIKES_PER_OBJECT * num_objects
    if not 0 <= num_lookalikes <= most:
        per = "" if difficulty == "easy" else f" ({MAX_HARD_LOOKALIKES_PER_OBJECT} per personal object)"
        raise InvalidInputError(f"num_lookalikes={num_lookalikes}: use 0..{most} in {difficulty} scenes{per}")
    if num_frames < 1:
        raise InvalidInputError(f"num_frames={num_frames}: use at least 1")
    if num_frames * width * height * _BYTES_PER_PIXEL > MAX_SCENE_BYTES:
        raise InvalidInputError(f"{num_frames} frames of {width}×{height} would need "
                                f"{num_frames * width * height * _BYTES_PER_PIXEL / 1e9:.1f} GB in memory (limit "
                                f"{MAX_SCENE_BYTES / 1e9:.0f} GB); use fewer frames or a smaller size")
    if fps <= 0:
        raise InvalidInputError(f"fps={fps}: must be positive")
    if int(seed) < 0:
        raise InvalidInputError(f"seed={seed}: must be non-negative")


def make_scene(seed: int = 0, num_frames: int = 60, size: tuple[int, int] = (320, 240), num_objects: int = 1,
               num_lookalikes: int | None = None, fps: float = DEFAULT_FPS, difficulty: str = "easy") -> Scene:
    """Render a deterministic synthetic scene.

    ``size`` is ``(W, H)``. Personal objects get instance ids ``1..num_objects``
    and names ``my_mug``, then other shapes in a seeded order.
    ``num_lookalikes`` defaults to 2 in ``easy`` scenes (at most 12) and to 3
    per personal object in ``hard`` ones (at most 4 per object). Returns a
    ``Scene`` with ``num_frames`` frames (``H×W×3`` uint8 RGB), per-frame
    ``H×W`` uint16 ground truth (personal and all-object), and three teaching
    captures. Raises InvalidInputError for out-of-range arguments.
    """
    width, height = (int(v) for v in size)
    if num_lookalikes is None:
        num_lookalikes = DEFAULT_LOOKALIKES_EASY if difficulty == "easy" else HARD_LOOKALIKES_PER_OBJECT * num_objects
    _check_arguments(width, height, num_frames, num_objects, num_lookalikes, fps, seed, difficulty)
    hard = difficulty == "hard"
    motion = _MOTION[difficulty]

    layout_seq, noise_seq = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(layout_seq)
    noise_rng = np.random.default_rng(noise_seq)

    personal, hues = personal_objects(rng, num_objects)
    lookalikes = (hard_lookalikes(rng, personal, num_lookalikes) if hard
                  else easy_lookalikes(rng, personal, hues, num_lookalikes))
    everything = personal + lookalikes
    background, clutter = _background(rng, width, height)
    # Class ground truth starts from the static clutter; objects and the occluder paint over it.
    class_base = np.where(clutter, CLASS_IDS[CLUTTER], NO_CLASS).astype(np.uint16)
    class_of = {o.object_id: CLASS_IDS[o.shape] for o in everything}
    count = num_objects + num_lookalikes
    cols = max(1, math.ceil(math.sqrt(count * width / height)))
    rows = math.ceil(count / cols)
    display = min(0.3 * height, 0.85 * min(width / cols, height / rows))
    canvas_px = max(96, math.ceil(display * 1.3))
    sprites = [make_sprite(o.shape, o.pattern, o.color, o.secondary, canvas_px) for o in everything]
    items = [(sprite, o.instance_id, o.object_id) for sprite, o in zip(sprites, everything, strict=True)]

    # In hard scenes one look-alike of each personal object rides beside it instead of wandering alone.
    riders: dict[int, int] = {}
    if hard:
        for k in range(num_objects):
            own = [j for j in range(num_lookalikes) if j % num_objects == k]
            if own:
                riders[k] = num_objects + int(rng.choice(own))
    wanderers = [item for n, item in enumerate(items) if n not in riders.values()]
    tracks: list[Track | Companion] = list(_tracks(rng, wanderers, width, height, display, num_frames,
                                                   num_objects, motion))
    if riders:
        leaders = {k: tracks[k] for k in riders}
        tracks += _companions(rng, leaders, {k: (sprites[n], everything[n].object_id) for k, n in riders.items()},
                              width, height, display, num_frames, motion)
    z_order = [tracks[int(k)] for k in rng.permutation(len(tracks))]

    occ_w, occ_h = max(6, int(0.11 * width)), max(8, int(0.72 * height))
    occluder = make_occluder_sprite(occ_w, occ_h, hsv_to_rgb(rng.uniform(15, 45), rng.uniform(0.2, 0.5),
                                                             rng.uniform(0.35, 0.6)))
    occ_y = occ_h / 2.0 - 2.0 if rng.random() < 0.5 else height - occ_h / 2.0 + 2.0
    sweep = max(8, round(0.45 * num_frames))
    sweep_start = int(rng.integers(int(0.1 * num_frames), max(int(0.1 * num_frames) + 1, num_frames - sweep + 1)))
    sweep_dir = 1.0 if rng.random() < 0.5 else -1.0
    gain_amp, gain_freq, gain_phase = rng.uniform(0.04, 0.12), rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)
    tint = rng.uniform(0.97, 1.03, 3).astype(np.float32)
    noise_sigma = float(rng.uniform(1.5, 3.0))

    # Sensor noise: per-frame random windows into one larger noise field (drawing fresh
    # Gaussian noise for every frame would dominate the rendering time).
    pad = 32
    noise_field = noise_rng.standard_normal((height + pad, width + pad, 3), dtype=np.float32) * noise_sigma

    def finish(canvas: np.ndarray, gain: float) -> np.ndarray:
        dy, dx = (int(v) for v in noise_rng.integers(0, pad, 2))
        canvas *= gain * tint
        canvas += noise_field[dy:dy + height, dx:dx + width]
        np.clip(canvas, 0.0, 255.0, out=canvas)
        return canvas.astype(np.uint8)

    frames: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    object_gts: list[np.ndarray] = []
    class_gts: list[np.ndarray] = []
    visible = np.zeros((num_objects, num_frames), np.float32)
    for i in range(num_frames):
        canvas = background.copy()
        gt = np.zeros((height, width), np.uint16)
        object_gt = np.zeros((height, width), np.uint16)
        class_gt = class_base.copy()
        full_area = np.zeros(num_objects + 1, np.int64)
        for track in z_order:
            pose = track.pose(i)
            if pose is not None:
                area = place(canvas, gt, track.sprite, pose[0], pose[1], pose[2], track.label, object_gt,
                             track.object_id, more_labels=((class_gt, class_of[track.object_id]),))
                full_area[track.label] += area if track.label else 0
        progress = (i - sweep_start) / sweep
        if 0.0 <= progress <= 1.0:
            t = progress if sweep_dir > 0 else 1.0 - progress
            occ_x = -occ_w + t * (width + 2 * occ_w)
            place(canvas, gt, occluder, (occ_x, occ_y), 1.0, 0.0, 0, object_gt, 0,
                  more_labels=((class_gt, NO_CLASS),))
        seen = np.bincount(gt.ravel(), minlength=num_objects + 1)
        visible[:, i] = seen[1:] / np.maximum(full_area[1:], 1)
        gain = 1.0 + gain_amp * math.sin(2 * math.pi * gain_freq * i / PERIOD + gain_phase)
        frames.append(finish(canvas, gain))
        gts.append(gt)
        object_gts.append(object_gt)
        class_gts.append(class_gt)

    teach_frames: list[np.ndarray] = []
    teach_gt: list[np.ndarray] = []
    teach_object_gt: list[np.ndarray] = []
    teach_class_gt: list[np.ndarray] = []
    outlines = [outline_points(s) for s in sprites] if hard else None
    max_angle = 180.0 if hard else 8.0
    for bias in rng.permutation([0.85, 1.0, 1.15])[:NUM_TEACH_FRAMES]:
        canvas = background.copy()
        gt = np.zeros((height, width), np.uint16)
        object_gt = np.zeros((height, width), np.uint16)
        class_gt = class_base.copy()
        for k, center, scale, angle in _teach_layout(rng, sprites, num_objects, width, height, display,
                                                     float(bias), max_angle, outlines):
            obj = everything[k]
            place(canvas, gt, sprites[k], center, scale, angle, obj.instance_id, object_gt, obj.object_id,
                  more_labels=((class_gt, class_of[obj.object_id]),))
        teach_frames.append(finish(canvas, float(rng.uniform(0.93, 1.07))))
        teach_gt.append(gt)
        teach_object_gt.append(object_gt)
        teach_class_gt.append(class_gt)

    # Personal objects wander (they come first): their tracks know when they are out of view.
    absent = {o.name: t.absent for o, t in zip(personal, tracks[:num_objects], strict=True) if t.absent is not None}
    return Scene(frames=frames, gt=gts, objects=personal, teach_frames=teach_frames, teach_gt=teach_gt,
                 lookalikes=lookalikes, seed=int(seed), size=(width, height), fps=float(fps),
                 absent_intervals=absent,
                 visible_fraction={o.name: visible[k] for k, o in enumerate(personal)},
                 object_gt=object_gts, teach_object_gt=teach_object_gt,
                 object_ids={o.object_id: o for o in everything}, difficulty=difficulty,
                 class_gt=class_gts, teach_class_gt=teach_class_gt, class_names=class_names())
