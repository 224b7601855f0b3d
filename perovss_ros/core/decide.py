"""Deciding among candidates: which region of a frame is the concept, if any.

Per frame and concept (``segment_frame``):

1. The concept's identity head gives a logit map; ``find_candidates`` turns it into candidate
   regions, best score first. Presence: the best candidate's score against the concept's
   calibrated threshold; below it the concept yields nothing.
2. The candidates above the threshold are ranked by score, the one that continues the track
   (it touches the predicted box) preferred by ``IdentityModel.track_preference``: continuity
   wins near-ties, but a look-alike beside the predicted position that scores clearly better, or
   the real object found elsewhere after a loss, takes over (no track: a global search).
3. The first choice is decoded (one batched call over the concepts) with its peak as the
   positive point, the other candidates' peaks and PerSAM's argmin as negative points, and its
   region as the bound of the mask (negative evidence cuts a touching look-alike off).
4. Outline check: when the concept's outline tells it from its look-alikes, a mask whose outline
   is too far from the shots' (``shape_accept``, 1.5× for a tracked candidate, whose outline an
   occluder may have cut) is not accepted; the next candidate is decoded instead (a second
   batched call, only for the concepts that need it). When none passes, the concept is absent.

At teach time ``fit_identity`` fits the head, calibrates the threshold leave-one-out on the
shots, and calibrates the outline cue on the look-alikes that the head cannot reject in the
teach frames themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core import matching, presence
from perovss_ros.core.cascade import CascadeRequest, run_cascade
from perovss_ros.core.identity import (
    Candidate,
    IdentityModel,
    find_candidates,
    fit_shot_heads,
    normalised_cells,
    recoloured,
    region_score,
    split_candidates,
)
from perovss_ros.core.protocols import MaskDecoder
from perovss_ros.core.shape import HARMONICS, best_outline, outline_options, shape_distance, shape_signature
from perovss_ros.core.tracker import TrackPrompt
from perovss_ros.core.types import BoxXYXY, Features, Guidance, Prompts

# Candidates decoded at most per concept and frame (the first choice and one alternative).
MAX_TRIES = 2
MAX_NEGATIVE_POINTS = 2
# The mask may reach this many image pixels (at least one cell) beyond the candidate's region:
# its border cells are mixed, and on a small image a cell is only a few pixels.
REGION_MARGIN_PX = 8.0
TRACKED_SHAPE_SLACK = 1.5
# Outline cue: an outline within this many times the shots' own spread (plus SHAPE_FLOOR, for
# shots that happen to look alike) counts as the same; without a look-alike of another outline to
# calibrate on, that is the limit.
SHAPE_SPREAD_FACTOR = 1.5
SHAPE_FLOOR = 0.01
MAX_SHAPE_NEGATIVES = 6
OWN_DECODE_IOU = 0.8
# Hue turns (degrees) of the first shot's object, learnt as negatives.
RECOLOUR_SHIFTS = (120.0, 240.0)



@dataclass
class FrameDecision:
    """Per concept: owned-candidate ``H×W bool`` mask or None, presence score, decoder score, maps."""

    masks: list[np.ndarray | None]
    presence: list[float]
    decode_scores: list[float]
    image_maps: torch.Tensor | None = None


def cell_pixels(features: Features) -> float:
    """Image pixels per grid cell."""
    return features.stride / features.scale


def logit_maps(models: list[IdentityModel], grid: torch.Tensor) -> torch.Tensor:
    """Every concept's head on one ``C×h×w`` grid in one matmul -> ``K×h×w`` float32."""
    c, h, w = grid.shape
    flat = F.normalize(grid.reshape(c, h * w).float(), dim=0)
    weights = torch.stack([m.head.weight.float() for m in models])
    biases = torch.tensor([m.head.bias for m in models], dtype=torch.float32)
    return (weights @ flat + biases[:, None]).reshape(-1, h, w)


def _box_cells(box: BoxXYXY, features: Features) -> np.ndarray:
    grid_h, grid_w = features.grid_hw
    per = 1.0 / cell_pixels(features)
    cells = np.zeros((grid_h, grid_w), bool)
    x0, y0 = max(0, int(box[0] * per)), max(0, int(box[1] * per))
    x1, y1 = min(grid_w, int(np.ceil(box[2] * per))), min(grid_h, int(np.ceil(box[3] * per)))
    cells[y0:y1, x0:x1] = True
    return cells


def _cells_box(cells: np.ndarray, features: Features) -> BoxXYXY:
    """XYXY image box of ``h×w`` bool grid cells (clipped to the image)."""
    ys, xs = np.nonzero(cells)
    px = cell_pixels(features)
    h, w = features.image_hw
    return (float(xs.min() * px), float(ys.min() * px), float(min(w, (xs.max() + 1) * px)),
            float(min(h, (ys.max() + 1) * px)))


def _union_box(a: BoxXYXY, b: BoxXYXY) -> BoxXYXY:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _grow(cells: np.ndarray, rings: int = 1) -> np.ndarray:
    size = 2 * rings + 1
    return cv2.dilate(cells.astype(np.uint8), np.ones((size, size), np.uint8)) > 0


def candidate_request(candidate: Candidate, others: list[Candidate], logits: torch.Tensor,
                      features: Features, embedding: torch.Tensor, track: TrackPrompt | None,
                      scale_weights: torch.Tensor | None = None) -> CascadeRequest:
    """Cascade prompts for decoding ``candidate`` (see the module docstring, step 3)."""
    points = [candidate.peak]
    labels = [1]
    box = track_box = None
    region = _grow(candidate.cells, max(1, round(REGION_MARGIN_PX / cell_pixels(features))))
    if track is not None and bool((_box_cells(track[0], features) & candidate.cells).any()):
        # The tracked box, widened to the candidate's region: a mask that shrank in the last frame
        # must not shrink the next one's box with it.
        box = _union_box(track[0], _cells_box(region, features))
        track_box = track.predicted if isinstance(track, TrackPrompt) else None
        centre_cell = _box_cells((*track[1], track[1][0] + 1e-3, track[1][1] + 1e-3), features)
        if bool((centre_cell & region).any()):
            points.append(track[1])
            labels.append(1)
    for other in others[:MAX_NEGATIVE_POINTS]:
        points.append(other.peak)
        labels.append(0)
    vh, vw = features.valid_hw
    low = int(torch.argmin(logits[:vh, :vw]))
    px = cell_pixels(features)
    points.append(((low % vw + 0.5) * px, (low // vw + 0.5) * px))
    labels.append(0)
    return CascadeRequest(
        prompts=Prompts(points=np.asarray(points, np.float32), labels=np.asarray(labels, np.int64), box=box,
                        region=region),
        guidance=Guidance(attention_bias=matching.attention_bias(logits, features.valid_hw),
                          target_embedding=embedding),
        scale_weights=scale_weights,
        positive=(float(points[0][0]), float(points[0][1])),
        track_box=track_box,
    )


def _outline_ok(mask: np.ndarray, model: IdentityModel, tracked: bool, image_map: torch.Tensor
                ) -> tuple[np.ndarray, bool, float]:
    """The mask, or its part where a look-alike touches it, that the outline check accepts.

    Of the options that pass, the one the head likes best (mean of the ``H×W`` logit map over it)
    wins: a touching look-alike of the same outline but another pattern is cut off. Returns that
    mask, whether it passes, and its outline distance (when none passes: the nearest outline).
    """
    if model.shape_accept is None or not mask.any():
        return mask, bool(mask.any()), 0.0
    limit = model.shape_accept * (TRACKED_SHAPE_SLACK if tracked else 1.0)
    best = (mask, False, float("inf"), -float("inf"))
    for option in outline_options(mask):
        signature = shape_signature(option)
        if signature is None:
            continue
        distance = shape_distance(signature, model.shape_refs)
        liked = float(image_map[torch.from_numpy(option)].mean())
        passed = distance <= limit or distance < shape_distance(signature, model.shape_negatives)
        if (passed, liked if passed else -distance) > (best[1], best[3] if best[1] else -best[2]):
            best = (option, passed, distance, liked)
    return best[0], best[1], best[2]


def segment_frame(decoder: MaskDecoder, features: Features, rgb: np.ndarray, concepts: list, tracks: dict,
                  gate: bool, timings: dict[str, float] | None = None, cascade: str = "full") -> FrameDecision:
    """Find, decide and decode every concept (with an ``identity`` model) in one encoded frame.

    ``concepts``: ``Concept`` objects; ``tracks``: name -> (expanded predicted box, centre) or None;
    ``gate`` False decodes each concept's best candidate whatever its score (teach-time self-check).
    The masks are not yet resolved against each other (``image_maps`` are the priorities).
    ``timings`` receives ``match`` (heads and candidates), ``prompt`` and ``decode`` seconds;
    ``cascade`` is the decode cascade's mode (``run_cascade``).
    """
    timings = {} if timings is None else timings
    tick = time.perf_counter()
    k = len(concepts)
    models = [c.identity for c in concepts]
    maps = logit_maps(models, features.grid)
    px = cell_pixels(features)
    candidates = [find_candidates(maps[i], features.valid_hw, px, c.presence_k) for i, c in enumerate(concepts)]
    decision = FrameDecision([None] * k, [cands[0].score for cands in candidates], [0.0] * k)
    plans: dict[int, list[Candidate]] = {}
    tracked: dict[int, Candidate | None] = {}
    for i, concept in enumerate(concepts):
        model = models[i]
        eligible = [c for c in candidates[i] if c.score >= model.threshold] if gate else candidates[i][:MAX_TRIES]
        if not eligible:
            continue
        track = tracks.get(concept.name)
        on_track = _box_cells(track[0], features) if track is not None else None
        cont = [c for c in eligible if on_track is not None and bool((c.cells & on_track).any())]
        tracked[i] = cont[0] if cont else None
        bonus = model.track_preference
        plans[i] = sorted(eligible, key=lambda c, t=tracked[i]: -(c.score + (bonus if c is t else 0.0)))
    timings["match"] = time.perf_counter() - tick
    if not plans:
        return decision
    tick = time.perf_counter()
    decision.image_maps = matching.upsample_to_image(maps, features)
    # First round: every concept's first choice; without a track to follow, also a runner-up that
    # scores within the track preference of it, when the outline can decide between the two
    # (a look-alike of the same colour and pattern scores the same).
    todo = []
    for i, plan in plans.items():
        todo.append((i, 0))
        close = len(plan) > 1 and plan[1].score >= plan[0].score - models[i].track_preference
        if tracked[i] is None and models[i].shape_accept is not None and close:
            todo.append((i, 1))
    best: dict[int, tuple[bool, float, np.ndarray, float]] = {}  # passed, -distance, mask, decoder score
    tried: dict[int, int] = {}
    timings["prompt"] = time.perf_counter() - tick
    tick = time.perf_counter()
    while todo:
        requests = []
        for i, n in todo:
            cand = plans[i][n]
            others = [c for c in candidates[i] if c is not cand]
            requests.append(candidate_request(cand, others, maps[i], features, concepts[i].embedding,
                                              tracks.get(concepts[i].name), concepts[i].scale_weights))
        decoded = run_cascade(decoder, features, rgb, requests, mode=cascade)
        for row, (i, n) in enumerate(todo):
            mask, passed, distance = _outline_ok(decoded.masks[row], models[i], plans[i][n] is tracked[i],
                                                decision.image_maps[i])
            option = (passed, -distance, mask, float(decoded.scores[row]))
            if i not in best or option[:2] > best[i][:2]:
                best[i] = option
            tried[i] = max(tried.get(i, 0), n + 1)
        # Second round: the next candidate of each concept whose choices all failed the outline.
        todo = [(i, tried[i]) for i in plans
                if not best[i][0] and tried[i] < min(MAX_TRIES, len(plans[i]))]
    for i, (passed, _, mask, score) in best.items():
        if passed or not gate:
            decision.masks[i] = mask
            decision.decode_scores[i] = score
    timings["decode"] = time.perf_counter() - tick
    return decision


def fit_identity(decoder: MaskDecoder, images: list[np.ndarray], masks: list[np.ndarray],
                 features: list[Features], fg_cells: list[torch.Tensor], embedding: torch.Tensor,
                 top_k: int, encode=None) -> IdentityModel:
    """Fit and calibrate a concept's identity model on its shots (see the module docstring).

    ``images``/``masks``: the shots (``H×W×3 uint8 RGB`` / ``H×W bool``); ``fg_cells``: per shot the
    ``h×w`` bool object cells of its grid. ``encode``: the backend's ``ImageEncoder.encode``, for
    the recoloured shot (None: no recoloured negatives).
    """
    grids = [f.grid for f in features]
    bg_cells = []
    for f, mask in zip(features, masks, strict=True):
        vh, vw = f.valid_hw
        valid = torch.zeros(f.grid_hw, dtype=torch.bool)
        valid[:vh, :vw] = True
        bg_cells.append(valid & (matching.mask_to_grid(mask, f) == 0))
    extra_neg = None
    if encode is not None:
        # The first shot recoloured: the concept's colour is part of it even when the teach frames
        # show no look-alike of another colour.
        extra_neg = torch.cat([normalised_cells(encode(recoloured(images[0], masks[0], shift)).grid, fg_cells[0])
                               for shift in RECOLOUR_SHIFTS])
    full, held_out = fit_shot_heads(grids, fg_cells, bg_cells, extra_neg)
    fg_scores, own, off_candidates, plausible = [], [], [], []
    for i, f in enumerate(features):
        # What the object scores in a frame the head has not seen (leave-one-out) ...
        logits = held_out[i].logits(f.grid)
        cands = find_candidates(logits, f.valid_hw, cell_pixels(f), top_k, limit=8)
        on, off = split_candidates(cands, fg_cells[i].numpy())
        fg_scores.append(max((c.score for c in on), default=region_score(logits.numpy(), fg_cells[i].numpy(),
                                                                          top_k)))
        # Look-alikes that score like the object in a frame the head has not seen are told apart
        # by their outline, if at all.
        plausible += [(i, c, cands) for c in off if c.score >= 0.5 * fg_scores[-1]]
        # ... and what the best look-alike still scores after the head has seen it as a negative.
        cands = find_candidates(full.logits(f.grid), f.valid_hw, cell_pixels(f), top_k, limit=8)
        on, off = split_candidates(cands, fg_cells[i].numpy())
        own.append((i, on[0], cands) if on else None)
        off_candidates += [(i, c, cands) for c in off]
    shape_refs, negatives, accept, distances = _calibrate_outline(decoder, images, masks, features, full,
                                                                  embedding,
                                                       [o for o in own if o is not None], plausible)
    # A look-alike the outline rejects does not raise the presence threshold: match its region.
    rejected = [(i, c.cells) for i, c, _ in plausible
                if accept is not None and distances.get(id(c), (0.0,))[0] > accept]
    bg_scores = [c.score for i, c, _ in off_candidates
                 if not any(i == j and int((c.cells & r).sum()) * 2 >= int(c.cells.sum()) for j, r in rejected)]
    # No look-alike candidate at all: the head's own boundary (logit 0) is the best background.
    cal = presence.calibrate(fg_scores, bg_scores or [0.0])
    # Below logit 0 the head itself says "not the concept", whatever the shots' spread.
    return IdentityModel(head=full, threshold=max(cal.threshold, 0.0), fg_low=cal.fg_low, bg_high=cal.bg_high,
                         shape_refs=shape_refs, shape_negatives=negatives, shape_accept=accept)


def _decode_candidates(decoder: MaskDecoder, images: list[np.ndarray], features: list[Features], head,
                       embedding: torch.Tensor, items: list[tuple[int, Candidate, list[Candidate]]]
                       ) -> list[np.ndarray]:
    """Decode ``(shot, candidate, all candidates)`` items as a frame would, one batched call per shot."""
    masks: list[np.ndarray | None] = [None] * len(items)
    for i in sorted({i for i, _, _ in items}):
        rows = [r for r, item in enumerate(items) if item[0] == i]
        logits = head.logits(features[i].grid)
        requests = [candidate_request(items[r][1], [x for x in items[r][2] if x is not items[r][1]], logits,
                                      features[i], embedding, None) for r in rows]
        out = run_cascade(decoder, features[i], images[i], requests)
        for r, mask in zip(rows, out.masks, strict=True):
            masks[r] = mask
    return masks


def _calibrate_outline(decoder: MaskDecoder, images: list[np.ndarray], masks: list[np.ndarray],
                       features: list[Features], head, embedding: torch.Tensor,
                       own: list[tuple[int, Candidate, list[Candidate]]],
                       confusable: list[tuple[int, Candidate, list[Candidate]]]
                       ) -> tuple[np.ndarray, np.ndarray | None, float | None, dict[int, tuple]]:
    """Outline references, look-alike outlines, ``shape_accept`` and each decoded look-alike's outline.

    The references are the shots' masks and the masks the decoder makes of the object in the
    shots (so its own habits, e.g. a rim it always misses, are part of "the same outline").
    The spread is how far each decoded shot lies from the other shots' references; the look-alikes
    the head cannot reject in the teach frames, decoded the same way, set how far is too far.
    Look-alikes map ``id(candidate)`` to (distance, signature); ``shape_accept`` is None when no
    look-alike needs the outline.
    """
    confusable = sorted(confusable, key=lambda item: -item[1].score)[:MAX_SHAPE_NEGATIVES]
    decoded = _decode_candidates(decoder, images, features, head, embedding, own + confusable)
    truth = [(i, shape_signature(m)) for i, m in enumerate(masks)]
    # Only decodes that found the shot's object (the reference mask) speak for its outline.
    mine = [(item[0], shape_signature(m)) for item, m in zip(own, decoded[:len(own)], strict=True)
            if _iou(m, masks[item[0]]) >= OWN_DECODE_IOU]
    refs = [(i, s) for i, s in truth + mine if s is not None]
    distances: dict[int, tuple[float, np.ndarray]] = {}
    if not refs:
        return np.zeros((0, HARMONICS + 1), np.float32), None, None, distances
    all_refs = np.stack([s for _, s in refs])
    spread = 0.0
    for i, s in mine:
        others = [r for j, r in refs if j != i] or [r for j, r in refs if r is not s]
        if s is not None and others:
            spread = max(spread, shape_distance(s, np.stack(others)))
    for (_, cand, _), mask in zip(confusable, decoded[len(own):], strict=True):
        part, distance = best_outline(mask, all_refs)
        if distance < float("inf"):
            distances[id(cand)] = (distance, shape_signature(part))
    # Look-alikes the head cannot reject in frames it was fitted on are the ones that share the
    # concept's colour and pattern; what still separates them is the outline. One that shares the
    # outline too (within the shots' own spread) is for appearance to reject. No look-alike of
    # another outline: appearance alone decides, and an occluded object is not lost to the check.
    same = SHAPE_SPREAD_FACTOR * spread + SHAPE_FLOOR
    different = [(d, s) for d, s in distances.values() if d > same]
    if not different:
        return all_refs, None, None, distances
    negatives = np.stack([s for _, s in different])
    return all_refs, negatives, (spread + min(d for d, _ in different)) / 2.0, distances


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.logical_or(a, b).sum())
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
