"""Seeded synthetic scenes with personal objects, look-alikes and exact ground truth.

``make_scene(seed, ...)`` draws a short camera sequence with OpenCV: a textured
background (gradient, low-frequency noise, wallpaper/tiles/wood grain, a table
edge, static clutter), personal objects with a distinctive colour and surface
pattern (``my_mug``, ``my_ball``, ...), and look-alike distractors of two kinds:

* ``same_shape``: the personal object's shape in another colour and pattern;
* ``same_colour``: the personal object's colours with another pattern and shape.

Everything moves smoothly (translation, scale change ±25 %, small rotation); a
foreground occluder (a pole) sweeps across the view and partially hides what it
passes; each personal object leaves the view through the nearest side edge for
an interval and comes back (sequences of 20 frames or more); the lighting
drifts and sensor noise is added. Ground truth is the instance id of the
personal object that owns each pixel (alpha ≥ 0.5 after compositing), 0 for
look-alikes, occluder and background. The same seed gives the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError, UnknownConceptError
from perovss_ros.core.types import BoxXYXY
from perovss_ros.sim.sprites import (
    PATTERNS,
    RGB,
    SHAPES,
    Sprite,
    covered_box,
    hsv_to_rgb,
    make_occluder_sprite,
    make_sprite,
    place,
)

DEFAULT_FPS = 10.0
NUM_TEACH_FRAMES = 3
MAX_OBJECTS = len(SHAPES)
MAX_LOOKALIKES = 12
MIN_SIZE = (64, 48)
MAX_SIZE = (4096, 4096)
# Motion is defined per nominal 60-frame period, so speed does not depend on sequence length.
_PERIOD = 60.0
_ABSENT_MIN_FRAMES = 20
# A scene lives in memory (RGB + uint16 ground truth: 5 bytes per pixel and frame).
MAX_SCENE_BYTES = 8 * 10**9


@dataclass(frozen=True)
class SceneObject:
    """An object drawn in a scene.

    ``instance_id`` is 1..N for personal objects (their pixel value in
    ``Scene.gt``) and 0 for look-alikes. ``kind`` is ``"personal"``,
    ``"same_shape"`` or ``"same_colour"``; ``mimics`` names the personal object
    a look-alike resembles. Colours are RGB.
    """

    name: str
    instance_id: int
    shape: str
    pattern: str
    color: RGB
    secondary: RGB
    kind: str = "personal"
    mimics: str | None = None


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


@dataclass
class _Track:
    """Scripted motion of one object: a smooth wander around a home point, plus an exit interval."""

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

    def pose(self, i: int) -> tuple[tuple[float, float], float, float] | None:
        """``(center, scale, angle)`` in frame ``i``, or None while out of view."""
        u = 2.0 * math.pi * i / _PERIOD
        wave = (self.amp * np.sin(self.freq * u + self.phase)).sum(axis=1)
        x, y = self.home[0] + wave[0], self.home[1] + wave[1]
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
        scale = self.scale0 * (1.0 + self.scale_amp * math.sin(self.scale_freq * u + self.scale_phase))
        angle = self.rot_amp * math.sin(self.rot_freq * u + self.rot_phase)
        return (float(x), float(y)), float(scale), float(angle)


def _hue_far_from(rng: np.random.Generator, taken: list[float]) -> float:
    """A hue (degrees) as far as possible from the hues in ``taken`` (best of 64 random candidates)."""
    candidates = rng.uniform(0.0, 360.0, 64)
    if not taken:
        return float(candidates[0])
    dist = np.abs((candidates[:, None] - np.asarray(taken)[None, :] + 180.0) % 360.0 - 180.0).min(axis=1)
    return float(candidates[int(np.argmax(dist))])


def _secondary(rng: np.random.Generator, hue: float) -> RGB:
    """A pattern colour that contrasts with a base of ``hue``: near white, near black or the complement."""
    choice = int(rng.integers(3))
    if choice == 0:
        return (236, 234, 228)
    if choice == 1:
        return (34, 32, 38)
    return hsv_to_rgb(hue + 180.0, 0.55, 0.95)


def _objects(rng: np.random.Generator, num_objects: int, num_lookalikes: int
             ) -> tuple[list[SceneObject], list[SceneObject]]:
    """Personal objects (``my_mug`` first) and their look-alikes, with colours, patterns and shapes."""
    shapes = ["mug", *(str(s) for s in rng.permutation([s for s in SHAPES if s != "mug"]))]
    textured = [p for p in PATTERNS if p != "plain"]
    patterns = [str(p) for p in rng.permutation(textured)]
    h0 = float(rng.uniform(0.0, 360.0))
    hues: list[float] = []
    personal: list[SceneObject] = []
    for k in range(num_objects):
        hue = h0 + k * 360.0 / num_objects + float(rng.uniform(-10.0, 10.0))
        hues.append(hue % 360.0)
        color = hsv_to_rgb(hue, float(rng.uniform(0.7, 0.95)), float(rng.uniform(0.72, 0.95)))
        personal.append(SceneObject(
            name=f"my_{shapes[k]}", instance_id=k + 1, shape=shapes[k], pattern=patterns[k % len(patterns)],
            color=color, secondary=_secondary(rng, hue)))
    lookalikes: list[SceneObject] = []
    for j in range(num_lookalikes):
        target = personal[j % num_objects]
        other_patterns = [p for p in PATTERNS if p != target.pattern]
        pattern = str(rng.choice(other_patterns))
        # Alternate the two kinds so that every personal object meets both as look-alikes accumulate.
        if (j // num_objects + j % num_objects) % 2 == 0:
            hue = _hue_far_from(rng, hues)
            hues.append(hue)
            lookalikes.append(SceneObject(
                name=f"lookalike_{j}_{target.shape}", instance_id=0, shape=target.shape, pattern=pattern,
                color=hsv_to_rgb(hue, float(rng.uniform(0.7, 0.95)), float(rng.uniform(0.72, 0.95))),
                secondary=_secondary(rng, hue), kind="same_shape", mimics=target.name))
        else:
            shape = str(rng.choice([s for s in SHAPES if s != target.shape]))
            lookalikes.append(SceneObject(
                name=f"lookalike_{j}_{shape}", instance_id=0, shape=shape, pattern=pattern,
                color=target.color, secondary=target.secondary, kind="same_colour", mimics=target.name))
    return personal, lookalikes


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static textured background, ``H×W×3`` float32 RGB in 0..255."""
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
    for _ in range(int(rng.integers(3, 8))):
        color = tuple(float(c) for c in hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3),
                                                     rng.uniform(0.3, 0.9)))
        cx, cy = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        r = int(min(width, height) * rng.uniform(0.04, 0.12))
        if rng.random() < 0.5:
            cv2.ellipse(img, (cx, cy), (r, int(r * rng.uniform(0.4, 1.0))), float(rng.uniform(0, 180)), 0, 360,
                        color, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)

    low = rng.standard_normal((int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3)).astype(np.float32)
    img += 10.0 * cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.uniform(-5.0, 5.0, (height, width, 1)).astype(np.float32)  # grain
    return np.clip(img, 0.0, 255.0)


def _tracks(rng: np.random.Generator, items: list[tuple[Sprite, int]], width: int, height: int,
            display: float, num_frames: int, personal_count: int) -> list[_Track]:
    """Motion scripts for ``items`` (sprite, label), each wandering in its own cell of a grid."""
    count = len(items)
    cols = max(1, math.ceil(math.sqrt(count * width / height)))
    rows = math.ceil(count / cols)
    cell_w, cell_h = width / cols, height / rows
    cells = rng.permutation(cols * rows)[:count]
    tracks: list[_Track] = []
    for k, (sprite, label) in enumerate(items):
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
        tracks.append(_Track(
            sprite=sprite, label=label, home=home, amp=amp,
            freq=rng.uniform(0.4, 1.2, (2, 2)), phase=rng.uniform(0, 2 * np.pi, (2, 2)),
            scale0=display / sprite.hw[0], scale_amp=float(rng.uniform(0.15, 0.25)),
            scale_freq=float(rng.uniform(0.5, 1.2)), scale_phase=float(rng.uniform(0, 2 * np.pi)),
            rot_amp=float(rng.uniform(3.0, 12.0)), rot_freq=float(rng.uniform(0.3, 1.0)),
            rot_phase=float(rng.uniform(0, 2 * np.pi)), absent=absent, exit_x=exit_x, ramp=ramp))
    return tracks


def _teach_layout(rng: np.random.Generator, sprites: list[Sprite], personal_count: int, width: int,
                  height: int, display: float, scale_bias: float) -> list[tuple[Sprite, int, tuple, float, float]]:
    """Non-overlapping placements for a teaching capture; personal objects first and always placed."""
    placed: list[tuple[float, float, float, float]] = []
    out = []
    margin = 2.0
    for k, sprite in enumerate(sprites):
        scale = display / sprite.hw[0] * scale_bias * float(rng.uniform(0.92, 1.08))
        done = False
        while not done:
            for _ in range(200):
                angle = float(rng.uniform(-8.0, 8.0))
                half = 0.5 * sprite.hw[0] * scale * 1.2
                if 2 * half + 2 * margin > min(width, height):
                    break
                center = (float(rng.uniform(half + margin, width - half - margin)),
                          float(rng.uniform(half + margin, height - half - margin)))
                box = covered_box(sprite, center, scale, angle)
                inside = box[0] >= margin and box[1] >= margin and box[2] <= width - margin \
                    and box[3] <= height - margin
                apart = all(box[2] + margin <= b[0] or b[2] + margin <= box[0] or box[3] + margin <= b[1]
                            or b[3] + margin <= box[1] for b in placed)
                if inside and apart:
                    placed.append(box)
                    out.append((sprite, k + 1 if k < personal_count else 0, center, scale, angle))
                    done = True
                    break
            if not done:
                if k >= personal_count:
                    break  # a look-alike that does not fit is left out of this capture
                scale *= 0.9  # a personal object must appear: try it smaller
    return out


def make_scene(seed: int = 0, num_frames: int = 60, size: tuple[int, int] = (320, 240), num_objects: int = 1,
               num_lookalikes: int = 2, fps: float = DEFAULT_FPS) -> Scene:
    """Render a deterministic synthetic scene.

    ``size`` is ``(W, H)``. Personal objects get instance ids ``1..num_objects``
    and names ``my_mug``, then other shapes in a seeded order. Returns a
    ``Scene`` with ``num_frames`` frames (``H×W×3`` uint8 RGB), per-frame
    ``H×W`` uint16 ground truth, and three teaching captures. Raises
    InvalidInputError for out-of-range arguments.
    """
    width, height = (int(v) for v in size)
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise InvalidInputError(f"scene size {size} out of range: width {MIN_SIZE[0]}..{MAX_SIZE[0]}, "
                                f"height {MIN_SIZE[1]}..{MAX_SIZE[1]}")
    if not 1 <= num_objects <= MAX_OBJECTS:
        raise InvalidInputError(f"num_objects={num_objects}: use 1..{MAX_OBJECTS}")
    if not 0 <= num_lookalikes <= MAX_LOOKALIKES:
        raise InvalidInputError(f"num_lookalikes={num_lookalikes}: use 0..{MAX_LOOKALIKES}")
    if num_frames < 1:
        raise InvalidInputError(f"num_frames={num_frames}: use at least 1")
    if num_frames * width * height * 5 > MAX_SCENE_BYTES:
        raise InvalidInputError(f"{num_frames} frames of {width}×{height} would need "
                                f"{num_frames * width * height * 5 / 1e9:.1f} GB in memory (limit "
                                f"{MAX_SCENE_BYTES / 1e9:.0f} GB); use fewer frames or a smaller size")
    if fps <= 0:
        raise InvalidInputError(f"fps={fps}: must be positive")
    if int(seed) < 0:
        raise InvalidInputError(f"seed={seed}: must be non-negative")

    layout_seq, noise_seq = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(layout_seq)
    noise_rng = np.random.default_rng(noise_seq)

    personal, lookalikes = _objects(rng, num_objects, num_lookalikes)
    background = _background(rng, width, height)
    count = num_objects + num_lookalikes
    cols = max(1, math.ceil(math.sqrt(count * width / height)))
    rows = math.ceil(count / cols)
    display = min(0.3 * height, 0.85 * min(width / cols, height / rows))
    canvas_px = max(96, math.ceil(display * 1.3))
    sprites = [make_sprite(o.shape, o.pattern, o.color, o.secondary, canvas_px) for o in personal + lookalikes]
    labels = [o.instance_id for o in personal] + [0] * num_lookalikes

    tracks = _tracks(rng, list(zip(sprites, labels, strict=True)), width, height, display, num_frames,
                     num_objects)
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
    visible = np.zeros((num_objects, num_frames), np.float32)
    for i in range(num_frames):
        canvas = background.copy()
        gt = np.zeros((height, width), np.uint16)
        full_area = np.zeros(num_objects + 1, np.int64)
        for track in z_order:
            pose = track.pose(i)
            if pose is not None:
                area = place(canvas, gt, track.sprite, pose[0], pose[1], pose[2], track.label)
                full_area[track.label] += area if track.label else 0
        progress = (i - sweep_start) / sweep
        if 0.0 <= progress <= 1.0:
            t = progress if sweep_dir > 0 else 1.0 - progress
            occ_x = -occ_w + t * (width + 2 * occ_w)
            place(canvas, gt, occluder, (occ_x, occ_y), 1.0, 0.0, 0)
        seen = np.bincount(gt.ravel(), minlength=num_objects + 1)
        visible[:, i] = seen[1:] / np.maximum(full_area[1:], 1)
        gain = 1.0 + gain_amp * math.sin(2 * math.pi * gain_freq * i / _PERIOD + gain_phase)
        frames.append(finish(canvas, gain))
        gts.append(gt)

    teach_frames: list[np.ndarray] = []
    teach_gt: list[np.ndarray] = []
    for bias in rng.permutation([0.85, 1.0, 1.15])[:NUM_TEACH_FRAMES]:
        canvas = background.copy()
        gt = np.zeros((height, width), np.uint16)
        for sprite, label, center, scale, angle in _teach_layout(rng, sprites, num_objects, width, height,
                                                                 display, float(bias)):
            place(canvas, gt, sprite, center, scale, angle, label)
        teach_frames.append(finish(canvas, float(rng.uniform(0.93, 1.07))))
        teach_gt.append(gt)

    absent = {o.name: t.absent for o, t in zip(personal, tracks, strict=False) if t.absent is not None}
    return Scene(frames=frames, gt=gts, objects=personal, teach_frames=teach_frames, teach_gt=teach_gt,
                 lookalikes=lookalikes, seed=int(seed), size=(width, height), fps=float(fps),
                 absent_intervals=absent,
                 visible_fraction={o.name: visible[k] for k, o in enumerate(personal)})
