"""Region appearance cues a look-alike cannot fake: colour, surface pattern and outline of a mask.

The identity head (``core/identity.py``) judges grid cells; a look-alike that differs in one
attribute only shares most of its cells' statistics with the concept. Once a candidate has a
mask, the whole region can be described, each cue invariant to what changes between views of
the *same* object:

* **colour**: a 2-D histogram of rg chromaticity (``r/(r+g+b)``, ``g/(r+g+b)``), which a change
  of light intensity leaves unchanged, plus a histogram of brightness relative to the region's
  median (dark and light parts of a pattern);
* **pattern**: the surface pattern binarised at the region's median brightness (so neither the
  light level nor the colours matter), described by its minority share, its boundary length per
  object size (how many stripes, dots or squares across the object, whatever the scale) and the
  Fourier magnitudes of its edge-orientation histogram (stripes have one orientation, a checker
  two at right angles, dots none; magnitudes do not change when the object turns);
* **outline**: the rotation- and scale-invariant signature of ``core/shape.py``. A mask the image
  border cuts can instead be compared with a shot placed over it and cut by the same border
  (``CueCheck.cut_units``, ``shape.cut_reference``).

``cue_distances`` gives each cue's distance to the nearest reference view. How far is still
"the same" is calibrated per concept at teach time (``CueCheck``), from the spread of its own
shots; a look-alike that differs in one attribute then lies far off in that one cue.

Each region also has a **palette** (the share of its pixels per chromaticity bin and brightness
tier): the references' palettes say which colours are the concept's (``palette_support``), and a
decoded mask that spilled onto something else is cut back to them (``colour_support``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from perovss_ros.core.shape import box_of, cut_reference, shape_distance, shape_signature

CUES: tuple[str, ...] = ("colour", "pattern", "outline")
CHROMA_BINS = 12
LIGHT_BINS = 6
ORIENTATION_BINS = 12
ORIENTATION_HARMONICS = 3
# Pixels described: at least this many after eroding the mask's rim (the rim mixes in background).
MIN_PIXELS = 60
# Darker pixels carry little reliable chromaticity (noise dominates their ratios).
MIN_BRIGHTNESS = 24.0


@dataclass(frozen=True)
class RegionDescriptor:
    """Cues of one masked region: ``colour`` (histogram, sums to 1), ``pattern`` (vector), ``outline``
    (``core/shape.py`` signature, None when the mask has no usable outline); ``cut``: the mask
    touches the image border, so part of its outline is the border's; ``palette``: the share of its
    pixels per chromaticity bin and brightness tier (``palette``)."""

    colour: np.ndarray
    pattern: np.ndarray
    outline: np.ndarray | None
    cut: bool = False
    palette: np.ndarray | None = None


def _rim_px(area: int) -> int:
    """The width in pixels of the rim ``_interior`` takes off a mask of ``area`` pixels."""
    return max(1, round(0.04 * np.sqrt(area)))


def _interior(mask: np.ndarray) -> np.ndarray:
    """The mask without its rim (a few pixels, relative to its size), or the mask when that is too small."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    rim = _rim_px(int(m.sum()))
    inner = cv2.erode(m, np.ones((2 * rim + 1, 2 * rim + 1), np.uint8)) > 0
    return inner if int(inner.sum()) >= MIN_PIXELS else m > 0


def colour_histogram(rgb: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Chromaticity and relative-brightness histogram of the ``H×W bool`` ``pixels`` of ``H×W×3 uint8``
    ``rgb`` -> ``CHROMA_BINS² + LIGHT_BINS`` float32, each part summing to 0.5."""
    values = rgb[pixels].astype(np.float32)
    total = values.sum(axis=1)
    bright = total / 3.0
    lit = bright >= MIN_BRIGHTNESS
    if not lit.any():
        lit = np.ones_like(lit)
    chroma = values[lit, :2] / np.maximum(total[lit, None], 1.0)
    # r and g of a chromaticity lie in [0, 1]; most colours lie well inside [0, 0.8].
    hist, _, _ = np.histogram2d(chroma[:, 0], chroma[:, 1], bins=CHROMA_BINS, range=[[0, 0.8], [0, 0.8]])
    hist = cv2.GaussianBlur(hist.astype(np.float32), (3, 3), 0.7)
    relative = bright / max(float(np.median(bright)), 1.0)
    light, _ = np.histogram(np.clip(relative, 0.0, 1.99), bins=LIGHT_BINS, range=(0.0, 2.0))
    chroma_part = hist.ravel() / max(float(hist.sum()), 1e-9)
    light_part = light.astype(np.float32) / max(float(light.sum()), 1e-9)
    return np.concatenate([0.5 * chroma_part, 0.5 * light_part]).astype(np.float32)


def pattern_vector(rgb: np.ndarray, mask: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Rotation-, scale- and light-invariant description of the surface pattern inside ``pixels``.

    ``[minority share, boundary length / sqrt(area) / 10, |F_1..F_3| / F_0 of the edge orientations]``.
    """
    x0, y0, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=np.uint8))
    crop = rgb[y0:y0 + h, x0:x0 + w]
    inside = pixels[y0:y0 + h, x0:x0 + w]
    # The pattern lives in the channel along which the region's colours vary most.
    values = crop.reshape(-1, 3).astype(np.float32)
    sample = values[inside.ravel()]
    centred = sample - sample.mean(0)
    _, _, vt = np.linalg.svd(centred[:: max(1, len(centred) // 4000)], full_matrices=False)
    channel = ((values - sample.mean(0)) @ vt[0]).reshape(h, w)
    channel = cv2.GaussianBlur(channel, (0, 0), 0.8)
    split = float(np.median(channel[inside]))
    # Otsu on the projection: the two colours of a pattern, whatever their share.
    lo, hi = float(channel[inside].min()), float(channel[inside].max())
    if hi - lo > 1e-6:
        scaled = np.clip((channel - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
        otsu, _ = cv2.threshold(scaled[inside].reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        split = lo + float(otsu) / 255.0 * (hi - lo)
    binary = (channel > split) & inside
    share = float(binary.sum()) / max(int(inside.sum()), 1)
    minority = min(share, 1.0 - share)
    area = float(inside.sum())
    # Pattern boundaries: where the binarised pattern changes between 4-neighbours inside the region.
    edges = ((binary[1:, :] != binary[:-1, :]) & inside[1:, :] & inside[:-1, :]).sum() + \
            ((binary[:, 1:] != binary[:, :-1]) & inside[:, 1:] & inside[:, :-1]).sum()
    density = float(edges) / np.sqrt(max(area, 1.0)) / 10.0
    smooth = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)[inside]
    angle = np.mod(np.arctan2(gy, gx)[inside], np.pi)
    hist, _ = np.histogram(angle, bins=ORIENTATION_BINS, range=(0.0, np.pi), weights=mag)
    spectrum = np.abs(np.fft.rfft(hist.astype(np.float64)))
    harmonics = spectrum[1:ORIENTATION_HARMONICS + 1] / max(float(spectrum[0]), 1e-9)
    return np.concatenate([[minority, density], harmonics]).astype(np.float32)


def touches_border(mask: np.ndarray) -> bool:
    """Whether the ``H×W bool`` mask reaches the image border (a region the border cuts)."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def describe_region(rgb: np.ndarray, mask: np.ndarray) -> RegionDescriptor | None:
    """Cues of the ``H×W bool`` ``mask`` in ``H×W×3 uint8 RGB`` ``rgb``; None when it is too small."""
    mask = np.asarray(mask, bool)
    if int(mask.sum()) < MIN_PIXELS:
        return None
    pixels = _interior(mask)
    return RegionDescriptor(colour=colour_histogram(rgb, pixels), pattern=pattern_vector(rgb, mask, pixels),
                            outline=shape_signature(mask), cut=touches_border(mask), palette=palette(rgb[pixels]))


# A palette cell is one of the concept's colours where some reference view puts at least this share
# of its pixels.
SUPPORT_SHARE = 0.01
# The colour-supported part of a mask is an option of its own only when it drops at least this share
# of the mask (less is the opening's noise) and keeps at least MIN_SUPPORTED of it (less is a speck, not
# the object). A spill of 5 % of the mask onto background can move the colour cue past the limit where
# a colour look-alike weighs it up (dev 3460's book: 6.6 units from the shots against 4.0 without it).
MIN_TRIM = 0.03
MIN_SUPPORTED = 0.2
# Brightness tiers of the palette: half an octave each (a cell widened by one tier either way takes a
# change of light of about ±40 %), from MIN_BRIGHTNESS to white.
TIER_STEP = 0.5
TIERS = int(np.ceil((np.log2(255.0) - np.log2(MIN_BRIGHTNESS)) / TIER_STEP))


def _palette_cells(rgb_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel (``N×3`` float32 RGB) its palette cell ``(r bin, g bin, tier)`` (``N×3`` int64) and whether it
    is lit enough to have one (``N`` bool). Tiers are ``TIER_STEP`` wide in log2 of the brightness, from
    ``MIN_BRIGHTNESS`` up."""
    total = rgb_values.sum(axis=1)
    bright = total / 3.0
    chroma = rgb_values[:, :2] / np.maximum(total[:, None], 1.0)
    bins = np.clip((chroma / 0.8 * CHROMA_BINS).astype(np.int64), 0, CHROMA_BINS - 1)
    steps = (np.log2(np.maximum(bright, MIN_BRIGHTNESS)) - np.log2(MIN_BRIGHTNESS)) / TIER_STEP
    tier = np.clip(steps.astype(np.int64), 0, TIERS - 1)
    return np.column_stack([bins, tier]), bright >= MIN_BRIGHTNESS


def palette(rgb_values: np.ndarray) -> np.ndarray:
    """``CHROMA_BINS×CHROMA_BINS×TIERS`` float32: the share of the lit pixels (``N×3`` RGB) in each
    chromaticity bin and brightness tier. Dark stripes and a grey background share a chromaticity;
    their tiers tell them apart."""
    cells, lit = _palette_cells(rgb_values.astype(np.float32))
    flat = (cells[lit, 0] * CHROMA_BINS + cells[lit, 1]) * TIERS + cells[lit, 2]
    out = np.bincount(flat, minlength=CHROMA_BINS * CHROMA_BINS * TIERS).astype(np.float32)
    return (out / max(float(out.sum()), 1.0)).reshape(CHROMA_BINS, CHROMA_BINS, TIERS)


def palette_support(palettes: Sequence[np.ndarray]) -> np.ndarray | None:
    """``CHROMA_BINS×CHROMA_BINS×TIERS`` bool: the palette cells that are the concept's colours (cells with at
    least ``SUPPORT_SHARE`` of the pixels of some of its ``palettes`` (``palette``), each widened by one
    chromaticity bin and one tier); None without palettes."""
    if not palettes:
        return None
    seen = (np.max(palettes, axis=0) >= SUPPORT_SHARE).astype(np.uint8)
    near = np.stack([cv2.dilate(seen[..., t], np.ones((3, 3), np.uint8)) for t in range(TIERS)], axis=2) > 0
    support = near.copy()
    support[..., 1:] |= near[..., :-1]
    support[..., :-1] |= near[..., 1:]
    return support


def shot_palettes(silhouettes: Sequence[np.ndarray], views: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The ``palette`` of each shot's own pixels, rim left out as ``describe_region`` does: ``silhouettes``
    (``h×w bool``) over ``views`` (``h×w×3 uint8 RGB``), as ``shot_views`` makes them."""
    palettes = []
    for silhouette, view in zip(silhouettes, views, strict=True):
        # Padded, so that the rim is also taken off where the mask meets the edge of its box.
        pad = _rim_px(int(silhouette.sum())) + 1
        inner = _interior(np.pad(silhouette, pad))[pad:-pad, pad:-pad]
        if int(inner.sum()) >= MIN_PIXELS:
            palettes.append(palette(view[inner]))
    return palettes


def colour_support(rgb: np.ndarray, mask: np.ndarray, support: np.ndarray | None) -> np.ndarray | None:
    """The part of the ``H×W bool`` ``mask`` in the concept's colours (``support``, ``palette_support``), or None.

    A decoded mask that spilled onto a touching thing of another colour (an occluder in front of
    a partly hidden object, background the image border left without contrast) keeps its own
    colours only: each pixel's palette cell (chromaticity and brightness tier, ``palette``) is
    looked up in ``support`` (dark pixels, whose chromaticity is noise, count as shown); the result
    is opened and closed, and its largest component within the mask is returned. None when that
    trims less than ``MIN_TRIM`` of the mask or keeps less than ``MIN_SUPPORTED`` of it.
    """
    if support is None:
        return None
    mask = np.asarray(mask, bool)
    ys, xs = np.nonzero(mask)
    if xs.size < MIN_PIXELS:
        return None
    cells, lit = _palette_cells(rgb[ys, xs].astype(np.float32))
    return supported_part(mask, ~lit | support[cells[:, 0], cells[:, 1], cells[:, 2]])


def supported_part(mask: np.ndarray, shown: np.ndarray) -> np.ndarray | None:
    """The largest part of the ``H×W bool`` ``mask`` made of its ``shown`` pixels (bool, one per mask
    pixel in ``np.nonzero`` order), opened and closed at a size relative to the mask's; None when that
    trims less than ``MIN_TRIM`` of the mask or keeps less than ``MIN_SUPPORTED`` of it."""
    mask = np.asarray(mask, bool)
    ys, xs = np.nonzero(mask)
    if xs.size < MIN_PIXELS:
        return None
    kept = int(shown.sum())
    if kept > (1.0 - MIN_TRIM) * xs.size or kept < MIN_SUPPORTED * xs.size:
        return None
    y0, x0 = ys.min(), xs.min()
    crop = np.zeros((ys.max() - y0 + 1, xs.max() - x0 + 1), np.uint8)
    crop[ys[shown] - y0, xs[shown] - x0] = 1
    side = max(3, 2 * round(0.03 * np.sqrt(xs.size)) + 1)  # relative to the mask's size
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    crop = cv2.morphologyEx(cv2.morphologyEx(crop, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    part = np.zeros_like(mask)
    part[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = labels == largest
    part &= mask
    area = int(part.sum())
    if area > (1.0 - MIN_TRIM) * xs.size or area < MIN_SUPPORTED * xs.size:
        return None
    return part


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two histograms that each sum to 1 (0: the same, 1: disjoint)."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sqrt(p * q).sum()))))


def cue_distances(desc: RegionDescriptor, references: list[RegionDescriptor]) -> np.ndarray:
    """Per cue (``CUES`` order) the distance of ``desc`` to its nearest reference -> float64 (3,).

    Colour: Hellinger distance of the histograms; pattern: Euclidean; outline: ``shape_distance``
    (0 when either side has no outline, so a missing outline neither helps nor hurts).
    """
    if not references:
        return np.zeros(len(CUES))
    colour = min(hellinger(desc.colour, r.colour) for r in references)
    pattern = min(float(np.linalg.norm(desc.pattern - r.pattern)) for r in references)
    outlines = [r.outline for r in references if r.outline is not None]
    outline = shape_distance(desc.outline, np.stack(outlines)) if desc.outline is not None and outlines else 0.0
    return np.array([colour, pattern, outline])


# Below these distances two views count as the same whatever the shots' spread: sensor noise,
# a turn and a ±20 % change of size move a cue this much (read off renders of one object in the
# development scenes, not the held-out ones).
CUE_FLOORS = np.array([0.04, 0.15, 0.04])
# A cue's scale is this many times the largest distance between the concept's own shots, at most
# CUE_CAP times its floor (shots that disagree on a cue weaken it, they do not switch it off).
SPREAD_FACTOR = 1.5
CUE_CAP = 2.5


@dataclass(frozen=True)
class CueCheck:
    """A concept's reference views and how far each cue may lie from them.

    ``references``: descriptors of the shots (their masks and the decoder's masks of them);
    ``scale``: per cue (``CUES`` order) the distance that counts as one unit; ``accept``: the
    largest summed distance (``distance``) that still counts as this object; ``weights``: per cue
    (``cue_weights``); ``silhouettes``: the shots' masks cropped to their boxes (``h×w bool`` each),
    placed over a border-cut mask to compare it with (``cut_units``), and ``views`` the shots' images
    cropped to the same boxes (``h×w×3 uint8 RGB``; may be empty); ``rivals``: the silhouettes of
    look-alikes seen at teach time that only their outline tells apart; ``light``: the colour of the
    shots' light (``illuminant.shots_light``, float32 (3,)), to which a frame under another light is
    brought back before a region of it is described; None: frames are described as they are.
    ``negatives``: descriptors of the look-alikes (and any other region the head took for the concept)
    decoded in the teach frames: what the concept is not (``negative_distance``).
    """

    references: tuple[RegionDescriptor, ...]
    scale: np.ndarray
    accept: float
    weights: np.ndarray = field(default_factory=lambda: np.ones(len(CUES)))
    silhouettes: tuple[np.ndarray, ...] = ()
    views: tuple[np.ndarray, ...] = ()
    rivals: tuple[np.ndarray, ...] = ()
    light: np.ndarray | None = None
    negatives: tuple[RegionDescriptor, ...] = ()

    @cached_property
    def support(self) -> np.ndarray | None:
        """The concept's palette cells: ``palette_support`` of the shots' own pixels (``views`` under
        ``silhouettes``), or of the references' palettes where no views are kept.

        The decoder's masks of the shots are left out: they count as references from IoU
        ``decide.OWN_DECODE_IOU`` (0.8) with the shot, so one may hold a rim or a pocket of background, and at
        ``SUPPORT_SHARE`` that background's colours would become the concept's (dev 3454's mug: 92 % of
        the background around it against 2 % from the shots alone), so no spill onto it is cut off."""
        if self.views:
            return palette_support(shot_palettes(self.silhouettes, self.views))
        return palette_support([r.palette for r in self.references if r.palette is not None])

    def cue_units(self, desc: RegionDescriptor) -> np.ndarray:
        """Per cue the distance to the nearest reference in units of ``scale`` -> float64 (3,)."""
        return cue_distances(desc, list(self.references)) / self.scale

    def weighted_units(self, desc: RegionDescriptor, trust_cut_outline: bool = True,
                       outline: np.ndarray | None = None,
                       references: tuple[RegionDescriptor, ...] | None = None) -> np.ndarray:
        """Per cue the weighted units that ``distance`` sums -> float64 (3,).

        ``trust_cut_outline`` False leaves the outline out (0) for a mask the image border cuts (the
        object followed out of view: its outline is partly the border's). ``outline``: a signature to
        measure the outline against instead of the references' (``cut_units``). ``references``: the
        descriptors to measure against instead of ``self.references`` (``negative_distance``).
        """
        refs = self.references if references is None else references
        units = self.weights * (cue_distances(desc, list(refs)) / self.scale)
        at = CUES.index("outline")
        if outline is not None and desc.outline is not None:
            units[at] = self.weights[at] * shape_distance(desc.outline, outline[None]) / self.scale[at]
        if desc.cut and not trust_cut_outline:
            units[at] = 0.0
        return units

    def cut_units(self, desc: RegionDescriptor, mask: np.ndarray, outline: bool = True) -> np.ndarray | None:
        """Per cue the weighted units of a border-cut region (``desc`` of the ``H×W bool`` ``mask``) against
        a shot placed over it and cut by the same border (``shape.cut_reference``): what the part of
        the object in view would look like -> float64 (3,).

        Colour and pattern are the placed shot's (its ``views`` crop turned, scaled and shifted the
        same way; the whole shots' without views). A placed outline nearer than the whole shots' is
        the whole shots' when a rival fits the mask at least as well as the shot (the part in view
        does not tell the two apart). ``outline`` False: the outline is left out (0; the tracked
        candidate's), and no rival is fitted. None without silhouettes or a fit.
        """
        placement = cut_reference(mask, self.silhouettes) if self.silhouettes else None
        if placement is None:
            return None
        whole = self.weighted_units(desc)
        at = CUES.index("outline")
        placed = None
        if self.views:
            h, w = placement.mask.shape
            rgb = cv2.warpAffine(self.views[placement.index], placement.matrix, (w, h), flags=cv2.INTER_LINEAR)
            placed = describe_region(rgb, placement.mask)
        if placed is not None:
            units = self.weights * cue_distances(desc, [placed]) / self.scale
        else:
            units = whole.copy()
            units[at] = self.weighted_units(desc, outline=shape_signature(placement.mask))[at]
        if not outline:
            units[at] = 0.0
        elif units[at] < whole[at] and self.rivals:
            rival = cut_reference(mask, self.rivals)
            if rival is not None and rival.iou >= placement.iou:
                units[at] = whole[at]
        return units

    def negative_distance(self, desc: RegionDescriptor, trust_cut_outline: bool = True) -> float:
        """The weighted summed cue distance of ``desc`` to the nearest of ``negatives`` (inf without any);
        ``trust_cut_outline`` as in ``weighted_units``."""
        return min((float(self.weighted_units(desc, trust_cut_outline, references=(n,)).sum())
                    for n in self.negatives), default=float("inf"))

    def distance(self, desc: RegionDescriptor, trust_cut_outline: bool = True) -> float:
        """Weighted sum of the cue units (0: like a shot; a one-attribute look-alike: far in one cue);
        ``trust_cut_outline`` as in ``weighted_units``."""
        return float(self.weighted_units(desc, trust_cut_outline).sum())


# A look-alike seen at teach time should lie at least this many times ``accept`` away; the cue
# that separates it best from the shots is weighted up (at most WEIGHT_CAP) until it does.
NEGATIVE_MARGIN = 1.5
WEIGHT_CAP = 3.0


def cue_weights(own: list[np.ndarray], negatives: list[np.ndarray], accept: float) -> np.ndarray:
    """Per-cue weights from the cue units of the decoded shots (``own``) and of look-alikes in the
    teach frames (``negatives``): each negative nearer than ``NEGATIVE_MARGIN × accept`` raises the
    weight of the cue in which it stands out most against the shots' own spread."""
    weights = np.ones(len(CUES))
    spread = np.max(np.stack(own), axis=0) if own else np.zeros(len(CUES))
    goal = NEGATIVE_MARGIN * accept
    for units in sorted(negatives, key=lambda u: float(u.sum())):
        if float((weights * units).sum()) >= goal:
            continue
        cue = int(np.argmax(units / (spread + 0.5)))
        rest = float((weights * units).sum()) - weights[cue] * units[cue]
        if units[cue] > 1e-6:
            weights[cue] = min(WEIGHT_CAP, max(weights[cue], (goal - rest) / units[cue]))
    return weights


def cue_scale(references: list[tuple[int, RegionDescriptor]]) -> np.ndarray:
    """Per-cue scale from ``(shot index, descriptor)`` references: ``SPREAD_FACTOR`` × the largest
    distance of a reference to those of the other shots, within ``CUE_FLOORS`` × [1, ``CUE_CAP``]."""
    spread = np.zeros(len(CUES))
    for i, desc in references:
        others = [d for j, d in references if j != i]
        if others:
            spread = np.maximum(spread, cue_distances(desc, others))
    return np.clip(SPREAD_FACTOR * spread, CUE_FLOORS, CUE_CAP * CUE_FLOORS)


def shot_views(images: list[np.ndarray], masks: list[np.ndarray]
               ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``CueCheck.silhouettes`` and ``CueCheck.views`` of shots (``H×W×3 uint8 RGB`` images,
    ``H×W bool`` masks): each mask and image cropped to the mask's box (empty masks left out)."""
    silhouettes, views = [], []
    for image, mask in zip(images, masks, strict=True):
        box = box_of(mask)
        if box is not None:
            silhouettes.append(np.asarray(mask, bool)[box].copy())
            views.append(np.ascontiguousarray(image[box]))
    return tuple(silhouettes), tuple(views)
