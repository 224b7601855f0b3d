"""What a synthetic scene contains: personal objects and their look-alikes (shape, pattern, colours).

Two families of look-alikes:

* easy (``make_scene(difficulty="easy")``), each differing in two attributes:
  ``same_shape`` (the personal object's shape in another colour and pattern) and
  ``same_colour`` (its colours with another pattern and shape);
* hard, each differing in exactly one attribute: ``only_colour`` (same shape and
  pattern, base colour at least ``MIN_HUE_STEP`` degrees of hue away, often not
  much more), ``only_pattern`` (same shape and colours, other pattern) and
  ``only_shape`` (same colours and pattern, other shape).

Colours are RGB; hues are degrees.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

from perovss_ros.sim.sprites import PATTERNS, RGB, SHAPES, hsv_to_rgb

PERSONAL = "personal"
EASY_KINDS: tuple[str, ...] = ("same_shape", "same_colour")
HARD_KINDS: tuple[str, ...] = ("only_colour", "only_pattern", "only_shape")
# An "other colour" look-alike is a clearly different hue, but not always the most different one.
MIN_HUE_STEP = 45.0
MAX_HUE_STEP = 150.0


@dataclass(frozen=True)
class SceneObject:
    """An object drawn in a scene.

    ``instance_id`` is 1..N for personal objects (their pixel value in
    ``Scene.gt``) and 0 for look-alikes. ``object_id`` is the object's own
    pixel value in ``Scene.object_gt`` (personal objects: equal to
    ``instance_id``; look-alikes: N+1, N+2, ...). ``kind`` is ``"personal"``
    or a look-alike kind (``same_shape``/``same_colour`` in easy scenes,
    ``only_colour``/``only_pattern``/``only_shape`` in hard ones); ``mimics``
    names the personal object a look-alike resembles. ``shape`` is the
    object's category word (``mug``, ``ball``, ``box``, ``bottle``,
    ``book``). Colours are RGB: ``color`` the base, ``secondary`` the pattern's.
    """

    name: str
    instance_id: int
    shape: str
    pattern: str
    color: RGB
    secondary: RGB
    kind: str = PERSONAL
    mimics: str | None = None
    object_id: int = 0


def hue_of(color: RGB) -> float:
    """Hue in degrees (0..360) of an RGB colour."""
    h, _, _ = colorsys.rgb_to_hsv(*(c / 255.0 for c in color))
    return 360.0 * h


def hue_distance(a: float, b: float) -> float:
    """Distance between two hues on the colour circle, degrees in 0..180."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


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


def personal_objects(rng: np.random.Generator, num_objects: int) -> tuple[list[SceneObject], list[float]]:
    """Personal objects (``my_mug`` first, then other shapes) and their base hues, hues spread evenly."""
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
            color=color, secondary=_secondary(rng, hue), object_id=k + 1))
    return personal, hues


def easy_lookalikes(rng: np.random.Generator, personal: list[SceneObject], hues: list[float],
                    num_lookalikes: int) -> list[SceneObject]:
    """Look-alikes that differ in two attributes: ``same_shape`` and ``same_colour``, alternating.

    ``hues`` (the personal objects' hues) is extended with the hues the
    ``same_shape`` look-alikes take, each as far as possible from those before.
    """
    num_objects = len(personal)
    lookalikes: list[SceneObject] = []
    for j in range(num_lookalikes):
        target = personal[j % num_objects]
        other_patterns = [p for p in PATTERNS if p != target.pattern]
        pattern = str(rng.choice(other_patterns))
        object_id = num_objects + j + 1
        # Alternate the two kinds so that every personal object meets both as look-alikes accumulate.
        if (j // num_objects + j % num_objects) % 2 == 0:
            hue = _hue_far_from(rng, hues)
            hues.append(hue)
            lookalikes.append(SceneObject(
                name=f"lookalike_{j}_{target.shape}", instance_id=0, shape=target.shape, pattern=pattern,
                color=hsv_to_rgb(hue, float(rng.uniform(0.7, 0.95)), float(rng.uniform(0.72, 0.95))),
                secondary=_secondary(rng, hue), kind="same_shape", mimics=target.name, object_id=object_id))
        else:
            shape = str(rng.choice([s for s in SHAPES if s != target.shape]))
            lookalikes.append(SceneObject(
                name=f"lookalike_{j}_{shape}", instance_id=0, shape=shape, pattern=pattern,
                color=target.color, secondary=target.secondary, kind="same_colour", mimics=target.name,
                object_id=object_id))
    return lookalikes


def hard_lookalikes(rng: np.random.Generator, personal: list[SceneObject], num_lookalikes: int
                    ) -> list[SceneObject]:
    """Look-alikes that differ from their personal object in exactly one attribute.

    Look-alike ``j`` mimics personal object ``j % N``; its kind cycles through
    ``HARD_KINDS`` (starting at a different kind for each object), so every
    object with three or more look-alikes meets all three. An ``only_colour``
    look-alike keeps the saturation, value and pattern colour and turns the
    base hue by ``MIN_HUE_STEP``..``MAX_HUE_STEP`` degrees either way.
    """
    num_objects = len(personal)
    lookalikes: list[SceneObject] = []
    for j in range(num_lookalikes):
        k, rank = j % num_objects, j // num_objects
        target = personal[k]
        kind = HARD_KINDS[(rank + k) % len(HARD_KINDS)]
        base = replace(target, instance_id=0, kind=kind, mimics=target.name, object_id=num_objects + j + 1)
        if kind == "only_colour":
            r, g, b = (c / 255.0 for c in target.color)
            hue, sat, val = colorsys.rgb_to_hsv(r, g, b)
            step = float(rng.uniform(MIN_HUE_STEP, MAX_HUE_STEP)) * (1.0 if rng.random() < 0.5 else -1.0)
            look = replace(base, color=hsv_to_rgb(360.0 * hue + step, sat, val))
        elif kind == "only_pattern":
            look = replace(base, pattern=str(rng.choice([p for p in PATTERNS if p != target.pattern])))
        else:
            look = replace(base, shape=str(rng.choice([s for s in SHAPES if s != target.shape])))
        lookalikes.append(replace(look, name=f"lookalike_{j}_{look.shape}"))
    return lookalikes
