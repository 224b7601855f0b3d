"""Training renders for the synthetic CLIP: the project's sprites on synthetic backgrounds, with captions.

Every sample is one square image and one caption. Objects are the sim's sprites
(``perovss_ros.sim.sprites``: shape × pattern × colour) placed on a textured frame
and cut out the way the labeller's crop path does (``crops.masked_crop``: the
mask's square box, background in the model's mean colour). Captions name a random subset of the attributes through the
prompt templates ("a photo of a red striped mug.", "a picture of a ball."), so the
shape word alone (what the labeller asks) is learnt. Shapes the sim does not have
(triangle, star, cross, ring) are captioned with the null texts ("a photo of an
object."), and empty backgrounds "a photo of the background.", which gives the
"none of these" class a meaning in this world.

Everything is drawn from one ``numpy.random.Generator``: a seed gives the same
samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from perovss_ros.core.labels.crops import masked_crop
from perovss_ros.core.labels.prompts import NULL_TEXTS, TEMPLATES
from perovss_ros.sim.sprites import PATTERNS, SHAPES, Sprite, hsv_to_rgb, make_sprite, pattern_layer, place

COLOURS: dict[str, float] = {"red": 0.0, "orange": 30.0, "yellow": 58.0, "green": 120.0, "cyan": 185.0,
                             "blue": 225.0, "purple": 275.0, "pink": 320.0}
"""Colour word → hue in degrees; samples take a hue within ±10° of it."""

PATTERN_WORDS: dict[str, str] = {"stripes": "striped", "dots": "dotted", "checker": "checkered",
                                 "bands": "banded", "plain": "plain"}
UNKNOWN_SHAPES: tuple[str, ...] = ("triangle", "star", "cross", "ring")
OBJECT_TEXTS: tuple[str, ...] = tuple(t for t in NULL_TEXTS if "background" not in t)
BACKGROUND_TEXT = next(t for t in NULL_TEXTS if "background" in t)
MEAN_RGB = np.array([123, 117, 104], np.uint8)  # open_clip's OPENAI_DATASET_MEAN × 255: the masked crops' fill


@dataclass(frozen=True)
class Attributes:
    """What a sample shows: ``shape`` is a sim shape, ``"object"`` (unknown shape) or ``"background"``."""

    shape: str
    pattern: str | None
    colour: str | None


@dataclass(frozen=True)
class Caption:
    """A caption and the attributes it names (None = not named, any value matches)."""

    text: str
    shape: str
    pattern: str | None
    colour: str | None

    def matches(self, attrs: Attributes) -> bool:
        """True when ``attrs`` has every attribute this caption names."""
        return (self.shape == attrs.shape and self.pattern in (None, attrs.pattern)
                and self.colour in (None, attrs.colour))


def caption_for(attrs: Attributes, rng: np.random.Generator) -> Caption:
    """A random caption of ``attrs``: the shape always, colour and pattern each about a third of the time."""
    if attrs.shape == "background":
        return Caption(BACKGROUND_TEXT, "background", None, None)
    if attrs.shape == "object":
        return Caption(str(rng.choice(OBJECT_TEXTS)), "object", None, None)
    colour = attrs.colour if rng.random() < 0.3 else None
    pattern = attrs.pattern if rng.random() < 0.3 else None
    words = [w for w in (colour, PATTERN_WORDS[pattern] if pattern else None, attrs.shape) if w]
    return Caption(str(rng.choice(TEMPLATES)).format(" ".join(words)), attrs.shape, pattern, colour)


def _secondary(rng: np.random.Generator, hue: float) -> tuple[int, int, int]:
    pick = rng.integers(3)
    if pick == 0:
        return hsv_to_rgb(hue, 0.05, 0.95)
    if pick == 1:
        return hsv_to_rgb(hue, 0.3, 0.12)
    return hsv_to_rgb(hue + 180.0, 0.8, 0.85)


def _unknown_mask(shape: str, size: int) -> np.ndarray:
    """``size×size uint8`` (0/255) silhouette of a shape the sim does not draw."""
    mask = np.zeros((size, size), np.uint8)
    c, r = size / 2.0, 0.45 * size
    if shape == "triangle":
        pts = [(c, c - r), (c + r, c + 0.8 * r), (c - r, c + 0.8 * r)]
    elif shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        pts = list(zip(c + radii * np.cos(angles), c - radii * np.sin(angles), strict=True))
    elif shape == "cross":
        w = 0.16 * size
        cv2.rectangle(mask, (int(c - w), int(c - r)), (int(c + w), int(c + r)), 255, -1)
        cv2.rectangle(mask, (int(c - r), int(c - w)), (int(c + r), int(c + w)), 255, -1)
        return mask
    else:  # ring
        cv2.circle(mask, (int(c), int(c)), int(r * 0.8), 255, max(2, int(0.18 * size)), cv2.LINE_AA)
        return mask
    cv2.fillPoly(mask, [np.round(np.asarray(pts)).astype(np.int32)], 255, cv2.LINE_AA)
    return mask


def _unknown_sprite(shape: str, pattern: str, color: tuple[int, int, int], secondary: tuple[int, int, int],
                    size: int) -> Sprite:
    layer = pattern_layer(pattern, size, period=size / 6.0)[..., None]
    rgb = np.asarray(color, np.float32) * (1.0 - layer) + np.asarray(secondary, np.float32) * layer
    alpha = _unknown_mask(shape, size).astype(np.float32) / 255.0
    return Sprite(np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32))


def random_object(rng: np.random.Generator, size: int, unknown_rate: float) -> tuple[Sprite, Attributes]:
    """A sprite of a random sim shape (or, with probability ``unknown_rate``, an unknown one) and what it shows."""
    colour = str(rng.choice(list(COLOURS)))
    hue = COLOURS[colour] + rng.uniform(-10.0, 10.0)
    color = hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0))
    pattern = str(rng.choice(PATTERNS))
    secondary = _secondary(rng, hue)
    if rng.random() < unknown_rate:
        shape = str(rng.choice(UNKNOWN_SHAPES))
        return _unknown_sprite(shape, pattern, color, secondary, size), Attributes("object", None, None)
    shape = str(rng.choice(SHAPES))
    return make_sprite(shape, pattern, color, secondary, size), Attributes(shape, pattern, colour)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size×size×3 float32`` (0..255) muted background: a tinted gradient, blotches and noise."""
    base = np.asarray(hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.85)), np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    ramp = 0.85 + 0.3 * (np.cos(angle) * xs + np.sin(angle) * ys)
    img = base[None, None, :] * ramp[..., None]
    for _ in range(int(rng.integers(0, 4))):
        tint = np.asarray(hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.0, 0.3), rng.uniform(0.2, 0.8)), np.float32)
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        img[y0:y0 + h, x0:x0 + w] = 0.5 * img[y0:y0 + h, x0:x0 + w] + 0.5 * tint
    img += 6.0 * rng.standard_normal(img.shape, dtype=np.float32)
    return img


def sprite_bank(rng: np.random.Generator, count: int, size: int, unknown_rate: float = 0.15
                ) -> list[tuple[Sprite, Attributes]]:
    """``count`` random objects drawn once (``random_object``), so that training only places them."""
    return [random_object(rng, size, unknown_rate) for _ in range(count)]


def _background_region(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size×size bool``: a random ellipse of the frame, what a proposal on a wall or table looks like."""
    mask = np.zeros((size, size), np.uint8)
    centre = (int(rng.integers(size // 4, 3 * size // 4)), int(rng.integers(size // 4, 3 * size // 4)))
    axes = (int(rng.integers(size // 8, size // 3)), int(rng.integers(size // 8, size // 3)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return mask > 0


def hide_part(rng: np.random.Generator, mask: np.ndarray, keep: tuple[float, float] = (0.55, 0.9)) -> np.ndarray:
    """``mask`` cut by a straight line at a random angle, keeping a random ``keep`` share of it: the
    object as the image border or an occluder's edge leaves it in view."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return mask
    angle = rng.uniform(0.0, 2.0 * np.pi)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    cut = np.quantile(along, rng.uniform(*keep))
    out = np.zeros_like(mask)
    out[ys[along <= cut], xs[along <= cut]] = True
    return out


def render_sample(rng: np.random.Generator, size: int, bank: list[tuple[Sprite, Attributes]],
                  background_rate: float = 0.07, crop_context: float = 0.1, max_turn: float = 25.0,
                  hidden_rate: float = 0.0) -> tuple[np.ndarray, Attributes]:
    """One ``size×size×3 uint8 RGB`` training image of a random object of ``bank``, and its attributes.

    The object is placed on a textured frame (1.5× the image size, scaled to 35–80 %
    of it, turned by up to ±``max_turn`` degrees) and cut out exactly as the labeller's crop path does
    (``crops.masked_crop``: square box widened by ``crop_context``, background in the
    mean colour), so training sees what labelling will. With ``hidden_rate`` the object is
    cut by a straight edge first (``hide_part``: the part a border or an occluder leaves in view).
    With ``background_rate`` the sample is a region of the background instead.
    """
    frame_size = round(1.5 * size)
    canvas = background(rng, frame_size)
    if rng.random() < background_rate:
        attrs, mask = Attributes("background", None, None), _background_region(rng, frame_size)
    else:
        sprite, attrs = bank[int(rng.integers(len(bank)))]
        labels = np.zeros((frame_size, frame_size), np.uint16)
        scale = rng.uniform(0.35, 0.8) * frame_size / sprite.hw[0]
        centre = tuple(frame_size / 2 + rng.uniform(-0.15, 0.15, 2) * frame_size)
        place(canvas, labels, sprite, centre, scale, rng.uniform(-max_turn, max_turn), 1)
        mask = labels == 1
        if rng.random() < hidden_rate:
            mask = hide_part(rng, mask)
    canvas *= rng.uniform(0.75, 1.2)
    frame = np.clip(canvas, 0, 255).astype(np.uint8)
    return masked_crop(frame, mask, (size, size), crop_context, MEAN_RGB), attrs
