"""Object sprites for synthetic scenes: a shape, a surface pattern and shading, drawn with OpenCV.

A sprite is drawn once per scene at a fixed canvas size and then warped
(moved, scaled, rotated) into every frame, so its texture moves with it.
Colours are RGB.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from perovss_ros.core.errors import InvalidInputError

RGB = tuple[int, int, int]

SHAPES: tuple[str, ...] = ("mug", "ball", "box", "bottle", "book")
PATTERNS: tuple[str, ...] = ("stripes", "dots", "checker", "bands", "plain")


@dataclass(frozen=True)
class Sprite:
    """A drawable object: ``rgba`` is ``h×w×4`` float32, RGB premultiplied by alpha (0..255), alpha 0..1.

    Premultiplied colour makes bilinear warping blend edges correctly.
    """

    rgba: np.ndarray

    @property
    def hw(self) -> tuple[int, int]:
        """``(h, w)`` of the sprite canvas."""
        return int(self.rgba.shape[0]), int(self.rgba.shape[1])


def hsv_to_rgb(hue_deg: float, sat: float, val: float) -> RGB:
    """RGB (0..255 ints) of a hue in degrees and saturation/value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def _rounded_rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, r: float) -> None:
    """Fill a rounded rectangle (value 255) into the uint8 mask ``img`` in place."""
    x0, y0, x1, y1, r = (round(v) for v in (x0, y0, x1, y1, r))
    cv2.rectangle(img, (x0 + r, y0), (x1 - r, y1), 255, -1)
    cv2.rectangle(img, (x0, y0 + r), (x1, y1 - r), 255, -1)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
        cv2.circle(img, (cx, cy), r, 255, -1, cv2.LINE_AA)


def shape_layers(shape: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Silhouette and shading of ``shape`` on a ``size×size`` canvas.

    Returns ``(mask, shade)``: mask ``size×size`` uint8 (0/255, anti-aliased
    edges), shade ``size×size`` float32 brightness factor (about 0.6..1.1) that
    gives the object a lit, three-dimensional look.
    """
    s = float(size)
    mask = np.zeros((size, size), np.uint8)
    xs = np.arange(size, dtype=np.float32)[None, :].repeat(size, 0)
    ys = np.arange(size, dtype=np.float32)[:, None].repeat(size, 1)
    shade = np.ones((size, size), np.float32)

    def cylinder(x0: float, x1: float) -> np.ndarray:
        u = np.clip((xs - x0) / max(x1 - x0, 1.0), 0.0, 1.0)
        return (0.72 + 0.38 * np.sin(np.pi * u)).astype(np.float32)

    if shape == "mug":
        _rounded_rect(mask, 0.08 * s, 0.14 * s, 0.72 * s, 0.94 * s, 0.08 * s)
        cv2.ellipse(mask, (int(0.72 * s), int(0.52 * s)), (int(0.17 * s), int(0.2 * s)), 0, -90, 90, 255,
                    max(2, int(0.075 * s)), cv2.LINE_AA)
        shade = cylinder(0.08 * s, 0.72 * s)
        shade[ys < 0.2 * s] *= 0.8  # the rim reads as the inside of the mug
    elif shape == "ball":
        cv2.circle(mask, (int(s / 2), int(s / 2)), int(0.45 * s), 255, -1, cv2.LINE_AA)
        r2 = ((xs - 0.4 * s) ** 2 + (ys - 0.38 * s) ** 2) / (0.55 * s) ** 2
        shade = (1.12 - 0.5 * np.clip(r2, 0.0, 1.0)).astype(np.float32)
    elif shape == "box":
        cv2.rectangle(mask, (int(0.08 * s), int(0.24 * s)), (int(0.92 * s), int(0.92 * s)), 255, -1)
        cv2.rectangle(mask, (int(0.04 * s), int(0.12 * s)), (int(0.96 * s), int(0.3 * s)), 255, -1)
        shade = np.where(ys < 0.3 * s, 1.08, 0.92 - 0.12 * (xs / s)).astype(np.float32)
    elif shape == "bottle":
        _rounded_rect(mask, 0.27 * s, 0.36 * s, 0.73 * s, 0.96 * s, 0.07 * s)
        cv2.ellipse(mask, (int(0.5 * s), int(0.4 * s)), (int(0.23 * s), int(0.12 * s)), 0, 180, 360, 255, -1,
                    cv2.LINE_AA)
        cv2.rectangle(mask, (int(0.41 * s), int(0.12 * s)), (int(0.59 * s), int(0.4 * s)), 255, -1)
        cv2.rectangle(mask, (int(0.39 * s), int(0.04 * s)), (int(0.61 * s), int(0.14 * s)), 255, -1)
        shade = cylinder(0.27 * s, 0.73 * s)
        shade[ys < 0.14 * s] *= 0.55  # dark cap
    elif shape == "book":
        cv2.rectangle(mask, (int(0.17 * s), int(0.05 * s)), (int(0.83 * s), int(0.95 * s)), 255, -1)
        shade = np.where(xs < 0.27 * s, 0.7, 1.0).astype(np.float32)  # spine
    else:
        raise InvalidInputError(f"unknown sprite shape {shape!r}; use one of {', '.join(SHAPES)}")
    return mask, shade


def pattern_layer(pattern: str, size: int, period: float) -> np.ndarray:
    """Where the secondary colour goes: ``size×size`` float32 in [0, 1] for ``pattern``.

    ``period`` is the pattern's repeat length in canvas pixels.
    """
    xs = np.arange(size, dtype=np.float32)[None, :]
    ys = np.arange(size, dtype=np.float32)[:, None]
    p = float(period)
    if pattern == "stripes":  # diagonal
        layer = ((xs + ys) % p) < p / 2
    elif pattern == "bands":  # horizontal
        layer = (ys % p) < p * 0.4
    elif pattern == "checker":
        layer = ((xs // p) + (ys // p)) % 2 == 1
    elif pattern == "dots":
        row = ys // p
        dx = (xs + (row % 2) * p / 2) % p - p / 2
        dy = ys % p - p / 2
        layer = dx * dx + dy * dy < (0.28 * p) ** 2
    elif pattern == "plain":
        layer = np.zeros((size, size), bool)
    else:
        raise InvalidInputError(f"unknown sprite pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    layer = np.broadcast_to(layer, (size, size)).astype(np.float32)
    # A slight blur so textures are not aliased when the sprite is shrunk.
    return cv2.GaussianBlur(layer, (0, 0), 0.6)


def make_sprite(shape: str, pattern: str, color: RGB, secondary: RGB, size: int) -> Sprite:
    """Draw an object of ``shape`` in ``color`` with ``pattern`` in ``secondary`` on a ``size×size`` canvas."""
    mask, shade = shape_layers(shape, size)
    layer = pattern_layer(pattern, size, period=size / 6.0)[..., None]
    base = np.asarray(color, np.float32)[None, None, :]
    second = np.asarray(secondary, np.float32)[None, None, :]
    rgb = (base * (1.0 - layer) + second * layer) * shade[..., None]
    alpha = mask.astype(np.float32) / 255.0
    rgba = np.concatenate([np.clip(rgb, 0, 255) * alpha[..., None], alpha[..., None]], axis=2)
    return Sprite(np.ascontiguousarray(rgba, dtype=np.float32))


def make_occluder_sprite(width: int, height: int, color: RGB) -> Sprite:
    """A foreground occluder (a pole or an arm passing by): rounded bar ``height×width`` with a wood-like grain."""
    mask = np.zeros((height, width), np.uint8)
    _rounded_rect(mask, 0, 0, width - 1, height - 1, max(1, width // 3))
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    grain = 0.9 + 0.1 * np.sin(xs * 0.9 + 0.05 * ys) * np.sin(ys * 0.07)
    round_shade = 0.75 + 0.3 * np.sin(np.pi * np.clip(xs / max(width - 1, 1), 0, 1))
    rgb = np.asarray(color, np.float32)[None, None, :] * (grain * round_shade)[..., None]
    alpha = mask.astype(np.float32) / 255.0
    rgba = np.concatenate([np.clip(rgb, 0, 255) * alpha[..., None], alpha[..., None]], axis=2)
    return Sprite(np.ascontiguousarray(rgba, dtype=np.float32))


def place(canvas: np.ndarray, labels: np.ndarray | None, sprite: Sprite, center: tuple[float, float],
          scale: float, angle_deg: float, label: int, object_labels: np.ndarray | None = None,
          object_label: int = 0, *, more_labels: Sequence[tuple[np.ndarray, int]] = ()) -> int:
    """Composite ``sprite`` into ``canvas`` in place, and paint ``label`` into ``labels`` where it covers.

    Returns the number of pixels the sprite covers (alpha ≥ 0.5) before anything drawn later hides it.

    ``canvas`` is ``H×W×3`` float32 (0..255), ``labels`` ``H×W`` uint16 or None.
    The sprite's centre goes to ``center`` (x, y), scaled by ``scale`` and
    rotated by ``angle_deg`` (counter-clockwise). A pixel belongs to the sprite
    when its alpha is at least 0.5; it then takes ``label`` (0 erases labels
    underneath: look-alikes and occluders hide the objects behind them), and
    ``object_label`` in ``object_labels`` (``H×W`` uint16) when that is given,
    and each ``(map, value)`` of ``more_labels`` (``H×W`` uint16 maps) the same way.
    """
    height, width = canvas.shape[:2]
    mat = placement(sprite, center, scale, angle_deg)
    bx0, by0, bx1, by1 = _corners_box(sprite, mat)
    x0, y0 = max(int(np.floor(bx0)), 0), max(int(np.floor(by0)), 0)
    x1, y1 = min(int(np.ceil(bx1)) + 1, width), min(int(np.ceil(by1)) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return 0
    mat[0, 2] -= x0
    mat[1, 2] -= y0
    warped = cv2.warpAffine(sprite.rgba, mat, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3:4]
    roi = canvas[y0:y1, x0:x1]
    roi *= 1.0 - alpha
    roi += warped[..., :3]
    covered = alpha[..., 0] >= 0.5
    if labels is not None:
        labels[y0:y1, x0:x1][covered] = label
    if object_labels is not None:
        object_labels[y0:y1, x0:x1][covered] = object_label
    for extra, value in more_labels:
        extra[y0:y1, x0:x1][covered] = value
    return int(covered.sum())


def placement(sprite: Sprite, center: tuple[float, float], scale: float, angle_deg: float) -> np.ndarray:
    """2×3 affine matrix taking sprite canvas pixels to image pixels."""
    h, w = sprite.hw
    mat = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, scale)
    mat[0, 2] += center[0] - w / 2.0
    mat[1, 2] += center[1] - h / 2.0
    return mat


def _corners_box(sprite: Sprite, mat: np.ndarray) -> tuple[float, float, float, float]:
    """XYXY box of the sprite canvas corners under ``mat``."""
    h, w = sprite.hw
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ mat.T
    return (float(corners[:, 0].min()), float(corners[:, 1].min()),
            float(corners[:, 0].max()), float(corners[:, 1].max()))


def covered_box(sprite: Sprite, center: tuple[float, float], scale: float, angle_deg: float
                ) -> tuple[float, float, float, float]:
    """XYXY box of the sprite's canvas after placement (an upper bound of its pixels)."""
    return _corners_box(sprite, placement(sprite, center, scale, angle_deg))


def outline_points(sprite: Sprite) -> np.ndarray:
    """``K×2`` float64 canvas points (x, y) of the convex hull of the sprite's silhouette (alpha ≥ 0.5)."""
    covered = (sprite.rgba[..., 3] >= 0.5).astype(np.uint8)
    points = cv2.findNonZero(covered)
    if points is None:
        h, w = sprite.hw
        return np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
    hull = cv2.convexHull(points).reshape(-1, 2).astype(np.float64)
    return np.concatenate([hull, hull + 1.0])  # pixel (x, y) covers up to (x + 1, y + 1)


def silhouette_box(points: np.ndarray, sprite: Sprite, center: tuple[float, float], scale: float,
                   angle_deg: float) -> tuple[float, float, float, float]:
    """XYXY box of the sprite's silhouette after placement, from its ``outline_points`` (tighter than
    ``covered_box`` for rotated sprites)."""
    mat = placement(sprite, center, scale, angle_deg)
    moved = points @ mat[:, :2].T + mat[:, 2]
    return (float(moved[:, 0].min()), float(moved[:, 1].min()), float(moved[:, 0].max()), float(moved[:, 1].max()))
