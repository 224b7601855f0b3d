"""Class-agnostic scene proposals: regions of a frame that are not personal objects, for labelling.

Two proposers, picked by the decoder (``propose_regions``):

* decoders with logits (sam): a ``POINTS_PER_SIDE²`` point grid over the image, one
  positive point per prompt set, multimask, decoded in one batched call on the frame's
  cached image embedding (no second encoder pass). A mask is kept when its predicted IoU is
  at least ``MIN_PREDICTED_IOU`` and its stability (area at logit > +1 over area at logit
  > -1, as SAM's automatic mask generator) at least ``MIN_STABILITY``.
* weights-free decoders (classic): k-means (``CLUSTERS``) of the encoder's grid descriptors,
  each cluster split into 4-connected components of cells, each shed of its border ring;
  scored by how it stands out from the cells around it (``_contrast``); the kept ones are then
  refined to pixels by the backend's own decoder (GrabCut) in one batched call (``refine``):
  on the sim's scenes that raised their IoU with the objects from about 0.7 to 0.9 and the
  synthetic CLIP's right shape words from 10 to 15 of 24 (20 of 24 on ground-truth masks).

Both then drop regions below ``MIN_AREA_FRACTION`` or above ``MAX_AREA_FRACTION`` of the
frame (specks and the background), remove the pixels personal segments own (a proposal
that loses more than half of itself that way is the personal object and is dropped), and
deduplicate by mask IoU (``DUPLICATE_IOU``, higher score first, at most ``MAX_PROPOSALS``), then give every pixel to
one proposal at most (smaller regions on top, as objects lie on larger surfaces).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from perovss_ros.core.cascade import decoder_has_logits
from perovss_ros.core.matching import mask_iou, tight_box
from perovss_ros.core.protocols import MaskDecoder
from perovss_ros.core.types import Features, Prompts

POINTS_PER_SIDE = 8
MIN_PREDICTED_IOU = 0.7
MIN_STABILITY = 0.8
STABILITY_OFFSET = 1.0
CLUSTERS = 6
# The classic descriptor's first block describes the cell alone (the later ones its 3×3 and 5×5
# neighbourhoods, which would grow every region by a halo); other grids are clustered whole.
CLUSTER_CHANNELS = slice(17, 34)
MIN_AREA_FRACTION = 0.005
MAX_AREA_FRACTION = 0.4
DUPLICATE_IOU = 0.7
KEPT_AFTER_EXCLUSION = 0.5
MAX_PROPOSALS = 24  # per frame, best first: bounds the regions the CLIP embeds
REFINE_MARGIN = 6.0  # px the refining decode's box extends a cell-resolution proposal
REFINE_MIN_IOU = 0.3
# The refining GrabCut may not leave the proposal's cells grown by this many: without that bound its
# crop took in up to 4 cells of surroundings per side, so the object got few of its work pixels.
REFINE_GROW_CELLS = 2
# Two GrabCut iterations (the backend's decoder runs 3): with the bound above, 96 px and 2 iterations
# cost half the unbounded 128 px, 3-iteration refine on dev scenes 3000-3005 and lost neither the
# refined masks' IoU with the objects nor named objects; at 64 px the generic mIoU fell.
REFINE_ITERATIONS = 2

# Instance ids: taught concepts take 1..PERSONAL_ID_MAX, generic segments the range above.
PERSONAL_ID_MAX = 32767
GENERIC_ID_MIN = PERSONAL_ID_MAX + 1
GENERIC_ID_MAX = 65535


@dataclass
class Proposal:
    """One class-agnostic region: ``mask`` ``H×W bool`` and a quality ``score`` in [0, 1]."""

    mask: np.ndarray
    score: float


def propose_regions(decoder: MaskDecoder, features: Features, rgb: np.ndarray, exclude: np.ndarray,
                    refiner: MaskDecoder | None = None) -> list[Proposal]:
    """Non-overlapping proposals of an ``H×W×3 uint8 RGB`` frame outside ``exclude`` (``H×W bool``).

    ``features`` are the frame's (already encoded). The point grid runs where the decoder
    gives logits, the descriptor clustering otherwise (see the module docstring), refined by
    ``refiner`` (default: ``decoder``; ``proposal_refiner`` gives a cheaper one).
    """
    if decoder_has_logits(decoder):
        return finish(_point_grid(decoder, features, rgb), exclude)
    coarse = finish(_clusters(features), exclude)
    return finish(refine(refiner or decoder, features, rgb, coarse), exclude)


def proposal_refiner(decoder: MaskDecoder, work_size: int) -> MaskDecoder:
    """The decoder that refines the classic proposals: ``decoder``'s GrabCut at ``work_size`` px (the longest
    side of its crop) and ``REFINE_ITERATIONS``; any other decoder is returned as it is."""
    from perovss_ros.core.classic.decoder import GrabCutDecoder

    if not isinstance(decoder, GrabCutDecoder):
        return decoder
    return GrabCutDecoder(decoder.grow_similarity, work_size=work_size, iterations=REFINE_ITERATIONS,
                          threads=decoder.threads)


def finish(raw: list[Proposal], exclude: np.ndarray) -> list[Proposal]:
    """Area limits, exclusion of ``exclude`` pixels, IoU deduplication and one owner per pixel."""
    total = exclude.size
    lo, hi = MIN_AREA_FRACTION * total, MAX_AREA_FRACTION * total
    kept: list[Proposal] = []
    kept_areas: list[int] = []
    for p in sorted(raw, key=lambda p: -p.score):
        area = int(np.count_nonzero(p.mask))
        if not lo <= area <= hi:
            continue
        mask = p.mask & ~exclude
        left = int(np.count_nonzero(mask))
        if left < lo or left < KEPT_AFTER_EXCLUSION * area:
            continue
        # IoU is at most the smaller area over the larger: most pairs need no pixel comparison.
        if any(min(left, a) >= DUPLICATE_IOU * max(left, a) and mask_iou(mask, k.mask) >= DUPLICATE_IOU
               for k, a in zip(kept, kept_areas, strict=True)):
            continue
        kept.append(Proposal(mask, p.score))
        kept_areas.append(left)
        if len(kept) == MAX_PROPOSALS:
            break
    owner = np.full(exclude.shape, -1, np.int32)
    order = sorted(range(len(kept)), key=lambda i: -kept_areas[i])
    for i in order:  # largest first, so smaller regions end on top
        owner[kept[i].mask] = i
    out = []
    for i, p in enumerate(kept):
        mask = owner == i
        if np.count_nonzero(mask) >= lo:
            out.append(Proposal(mask, p.score))
    return out


def refine(decoder: MaskDecoder, features: Features, rgb: np.ndarray, proposals: list[Proposal]) -> list[Proposal]:
    """Pixel-accurate masks for cell-resolution proposals: one batched decode, each prompted with its
    innermost pixel, its box grown by ``REFINE_MARGIN`` px and, as the region it may occupy, its cells grown
    by ``REFINE_GROW_CELLS``; a decode that comes back empty or strays (IoU < ``REFINE_MIN_IOU`` with the
    proposal) keeps the proposal's own mask."""
    if not proposals:
        return []
    prompts = region_prompts([p.mask for p in proposals], REFINE_MARGIN)
    grow = np.ones((2 * REFINE_GROW_CELLS + 1, 2 * REFINE_GROW_CELLS + 1), np.uint8)
    for prompt, p in zip(prompts, proposals, strict=True):
        prompt.region = cv2.dilate(mask_cells(p.mask, features).astype(np.uint8), grow) > 0
    out = decoder.decode(features, rgb, prompts)
    refined = []
    for p, mask in zip(proposals, out.masks[:, 0], strict=True):
        mask = np.asarray(mask, bool)
        refined.append(Proposal(mask if mask_iou(mask, p.mask) >= REFINE_MIN_IOU else p.mask, p.score))
    return refined


def mask_cells(mask: np.ndarray, features: Features) -> np.ndarray:
    """``h×w bool`` grid cells (``features.grid_hw``) at least half covered by an ``H×W bool`` image mask (the
    image spread evenly over the valid cells: the encoder's mapping up to its rounding at the edges)."""
    vh, vw = features.valid_hw
    cells = np.zeros(features.grid_hw, bool)
    cells[:vh, :vw] = cv2.resize(mask.astype(np.float32), (vw, vh), interpolation=cv2.INTER_AREA) >= 0.5
    return cells


def region_prompts(masks: list[np.ndarray], margin: float) -> list[Prompts]:
    """One prompt set per non-empty ``H×W bool`` mask: its innermost pixel (largest distance to the
    mask's edge) as the positive point and its tight box grown by ``margin`` px (clipped), XYXY."""
    prompts = []
    for mask in masks:
        h, w = mask.shape
        inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        y, x = np.unravel_index(int(inside.argmax()), inside.shape)
        x0, y0, x1, y1 = tight_box(mask)
        box = (max(0.0, x0 - margin), max(0.0, y0 - margin), min(float(w), x1 + margin), min(float(h), y1 + margin))
        prompts.append(Prompts(points=np.asarray([[x, y]], np.float32), labels=np.ones(1, np.int64), box=box))
    return prompts


def follow_regions(decoder: MaskDecoder, features: Features, rgb: np.ndarray, masks: list[np.ndarray],
                   exclude: np.ndarray, margin: float) -> list[np.ndarray | None]:
    """Each previous ``H×W bool`` mask's region in this frame (None: lost), in one batched decode.

    Prompted as ``region_prompts`` with the search ``margin`` (px the region may have moved), then
    ``settle``d.
    """
    if not masks:
        return []
    out = decoder.decode(features, rgb, region_prompts(masks, margin))
    return settle([np.asarray(m, bool) for m in out.masks[:, 0]], exclude)


def settle(found: list[np.ndarray], exclude: np.ndarray) -> list[np.ndarray | None]:
    """Followed ``H×W bool`` masks made fit to publish: kept out of ``exclude`` (personal pixels), each pixel
    given to one region (smaller on top), and None (lost) below ``MIN_AREA_FRACTION`` of the frame or above
    ``MAX_AREA_FRACTION``."""
    lo, hi = MIN_AREA_FRACTION * exclude.size, MAX_AREA_FRACTION * exclude.size
    found = [m & ~exclude for m in found]
    owner = np.full(exclude.shape, -1, np.int32)
    for i in sorted(range(len(found)), key=lambda i: -int(found[i].sum())):
        owner[found[i]] = i
    followed: list[np.ndarray | None] = []
    for i in range(len(found)):
        mask = owner == i
        followed.append(mask if lo <= mask.sum() <= hi else None)
    return followed


def grid_points(image_hw: tuple[int, int], per_side: int = POINTS_PER_SIDE) -> np.ndarray:
    """``per_side²×2`` float32 ``(x, y)`` cell centres of a regular grid over an ``H×W`` image."""
    h, w = image_hw
    xs = (np.arange(per_side) + 0.5) * w / per_side
    ys = (np.arange(per_side) + 0.5) * h / per_side
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)


def stability(logits: torch.Tensor, offset: float = STABILITY_OFFSET) -> np.ndarray:
    """SAM's stability score of ``...×h×w`` mask logits: area above ``+offset`` over area above ``-offset``."""
    high = (logits > offset).flatten(-2).sum(-1).float()
    low = (logits > -offset).flatten(-2).sum(-1).float()
    return (high / low.clamp(min=1.0)).numpy()


def _point_grid(decoder: MaskDecoder, features: Features, rgb: np.ndarray) -> list[Proposal]:
    points = grid_points(rgb.shape[:2])
    prompts = [Prompts(points=p[None], labels=np.ones(1, np.int64), multimask=True) for p in points]
    out = decoder.decode(features, rgb, prompts)
    scores = np.asarray(out.scores, np.float32)
    stable = stability(out.logits.float()) if out.logits is not None else np.ones_like(scores)
    proposals = []
    for k in range(len(prompts)):
        for m in range(scores.shape[1]):
            if scores[k, m] >= MIN_PREDICTED_IOU and stable[k, m] >= MIN_STABILITY:
                proposals.append(Proposal(np.asarray(out.masks[k, m], bool), float(min(scores[k, m], 1.0))))
    return proposals


def _clusters(features: Features) -> list[Proposal]:
    vh, vw = features.valid_hw
    grid = features.grid[CLUSTER_CHANNELS, :vh, :vw].float()
    data = torch.nn.functional.normalize(grid.reshape(grid.shape[0], -1).T, dim=1).numpy().astype(np.float32)
    cells_desc = data.reshape(vh, vw, -1)
    k = min(CLUSTERS, len(data))
    if k < 2:
        return []
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1e-3)
    cv2.setRNGSeed(0)  # the same frame gives the same clusters
    _, assigned, _ = cv2.kmeans(data, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    assigned = assigned.reshape(vh, vw)
    h, w = features.image_hw
    # Grid cell -> image pixel: the encoder scaled the image by ``scale`` and cells are ``stride`` wide.
    cell_px = features.stride / features.scale
    ys = np.minimum((np.arange(h) / cell_px).astype(int), vh - 1)
    xs = np.minimum((np.arange(w) / cell_px).astype(int), vw - 1)
    # Image pixels per cell: a region's area is known before it is drawn at full size, so the many
    # specks k-means leaves (which ``finish`` would drop by area) are never drawn.
    cell_area = np.outer(np.bincount(ys, minlength=vh), np.bincount(xs, minlength=vw))
    lo, hi = MIN_AREA_FRACTION * h * w, MAX_AREA_FRACTION * h * w
    proposals = []
    for c in range(k):
        count, parts = cv2.connectedComponents((assigned == c).astype(np.uint8), connectivity=4)
        for part in range(1, count):
            cells = parts == part
            # Pooled over 3×3 cells, a region's border cells half belong to its neighbours: shed one ring.
            inner = cv2.erode(cells.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE) > 0
            cells = inner if inner.any() else cells
            if not lo <= cell_area[cells].sum() <= hi:
                continue
            mask = cells[ys][:, xs]
            proposals.append(Proposal(mask, _contrast(cells_desc, cells)))
    return proposals


def _contrast(descriptors: np.ndarray, cells: np.ndarray) -> float:
    """How a region of ``h×w`` cells stands out from the ring of cells around it: (1 - cosine of their mean
    ``h×w×C`` descriptors) / 2, in [0, 1]; an object on a surface scores high, a patch of that surface low."""
    ring = (cv2.dilate(cells.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~cells
    if not ring.any():
        return 0.0
    inside, around = descriptors[cells].mean(0), descriptors[ring].mean(0)
    cosine = float(inside @ around) / max(float(np.linalg.norm(inside) * np.linalg.norm(around)), 1e-12)
    return (1.0 - cosine) / 2.0
