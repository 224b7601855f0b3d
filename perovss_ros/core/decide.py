"""Deciding among candidates: which region of a frame is the concept, if any.

Per frame and concept (``segment_frame``):

1. The concept's identity head gives a logit map; ``find_candidates`` turns it into candidate
   regions, best score first. Candidates at or above ``min(threshold, 0)`` are eligible: the head
   only has to keep out what plainly is not the concept, the region cues below decide identity.
   A candidate that continues a distractor (``core/distractors.py``: a region seen apart from the
   concept in a frame where its tracked candidate passed within ``SETTLE`` × accept) is not eligible.
2. The plan is the eligible candidates, the one that continues the track (it touches the
   predicted box) first (``plan_candidates``). When none has its peak inside the predicted box, the
   track's own box (``track_candidate``) comes next, checked as a new detection. Each is decoded
   with its peak as the positive point, the other candidates' peaks and PerSAM's argmin as
   negative points, and its region as the bound of the mask (negative evidence cuts a touching
   look-alike off). A decoder without logits (classic) skips refinement 2
   (``run_cascade(refine=False)``).
3. Region check (``core/appearance.py``): the decoded mask, the part of it where a touching
   neighbour is split off, or the part in the concept's own colours (``colour_support``), is
   described by colour, surface pattern and outline; its weighted distance to the shots must
   stay within ``cues.accept`` (``TRACKED_SLACK`` × that for the tracked candidate, whose outline
   an occluder may have cut; its outline is left out where the image border cuts the mask). Beyond
   ``cues.accept`` the look-alikes decoded at teach time (``CueCheck.negatives``) also judge it
   (``acceptance_limit``): nearer the shots than all of them, a new candidate may reach
   ``NEARER_SLACK`` × accept; nearer one of them, the tracked one only ``NEGATIVE_TRACKED_SLACK`` ×, and a
   new one (not border-cut) does not pass even within accept. A
   border-cut mask that fails against the whole shots is also measured against a shot placed over
   it and cut by the same border (``CueCheck.cut_units``: that part's colour, pattern and outline,
   the outline only when no look-alike seen at teach time fits it as well); each cue takes the
   nearer of the two. A look-alike that differs in one attribute lies far off in that cue.
   The tracked candidate keeps its leniency only for a mask that stays on the object's last mask
   (``continues_last_mask``: moved on by the track); such a mask is also checked without thin
   strips it ran along a neighbour (``shape.without_strips``), and one that is the object partly
   hidden (``partly_hidden``: inside the last mask and smaller) without its outline. The tracked
   candidate's mask is also checked cut back to that last mask's reach (``within_reach``): a decode
   that ran onto a neighbour or the background beyond where the object can be loses that part.
4. Round 1: the tracked candidate (or the best one) of every concept, one batched decode. A
   tracked candidate within ``SETTLE`` × accept is kept; otherwise round 2 decodes the rest of the
   first ``MAX_DECODES``, and round 3 the others where none of those passed; round 4, where still
   none passed, the candidates that only doubtful distractors held back (``RECHECK``). Among the candidates
   that pass, the lowest cost wins: the cue distance, less ``HEAD_WEIGHT`` for a head score like
   the shots', less ``TRACK_BONUS`` for continuing the track. When none passes, the concept is
   absent in this frame. A winner that does not continue the track, with another candidate
   elsewhere passing within ``AMBIGUITY`` units of it, is not taken either: two regions fit the
   concept equally well, and a track started on the wrong one would hold it.

At teach time ``fit_identity`` fits the head (on the shots and on each shot turned by
``SHOT_TURNS``), calibrates its threshold leave-one-out on the shots, and calibrates the region
check: references are the shots' masks and the decoder's own masks of them and of the turned shots
(the decoder loses a handle at some angles and not at others), each cue's unit is the
shots' spread (``cue_scale``), and the look-alikes decoded in the teach frames raise the weight of
the cue that tells each of them apart (``cue_weights``); those that only their outline tells apart
are kept as rivals for border-cut masks (``CueCheck.rivals``). The look-alikes' descriptions are kept
as the concept's negatives (``CueCheck.negatives``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core import matching, presence
from perovss_ros.core.appearance import (
    CUES,
    CueCheck,
    RegionDescriptor,
    colour_support,
    cue_distances,
    cue_scale,
    cue_weights,
    describe_region,
    shot_views,
    supported_part,
    touches_border,
)
from perovss_ros.core.cascade import CascadeRequest, decoder_has_logits, run_cascade
from perovss_ros.core.distractors import DistractorMemory
from perovss_ros.core.identity import (
    Candidate,
    IdentityModel,
    find_candidates,
    fit_shot_heads,
    grow_cells,
    normalised_cells,
    recoloured,
    region_score,
    split_candidates,
)
from perovss_ros.core.illuminant import illuminant, light_change, relit, shots_light
from perovss_ros.core.protocols import MaskDecoder
from perovss_ros.core.shape import outline_options, silhouette, without_strips
from perovss_ros.core.tracker import TrackPrompt, margin_px
from perovss_ros.core.types import BoxXYXY, Features, Guidance, Prompts

# Candidates decoded in rounds 1-2 per concept and frame (the tracked one first, then the best head
# scores); the others only when none of these passes.
MAX_DECODES = 3
MAX_CANDIDATES = 8
MAX_NEGATIVE_POINTS = 2
# The mask may reach this many image pixels (at least one cell) beyond the candidate's region:
# its border cells are mixed, and on a small image a cell is only a few pixels.
REGION_MARGIN_PX = 8.0
# Region cues (``core/appearance.py``): a candidate whose summed cue distance exceeds ACCEPT units
# is not the concept; the candidate that continues the track may reach TRACKED_SLACK × that (an
# occluder may cut its outline) and is preferred by TRACK_BONUS units.
ACCEPT = 4.5
TRACKED_SLACK = 2.0
# With look-alikes seen at teach time (``CueCheck.negatives``) a candidate beyond ACCEPT is also judged
# against them: nearer the shots than every one of them, a new candidate may reach NEARER_SLACK × ACCEPT
# (a decoded mask that lost a handle or took in a rim of background is still more like the shots than
# like anything the concept is not); nearer one of them, the tracked candidate only NEGATIVE_TRACKED_SLACK ×
# ACCEPT (a track that slid onto the look-alike riding beside the object lets go of it).
NEARER_SLACK = 1.5
NEGATIVE_TRACKED_SLACK = 1.5
TRACK_BONUS = 1.0
HEAD_WEIGHT = 1.0
# A new pick (not continuing a track) with another candidate elsewhere passing within this many
# units of its cost is one of two look-alikes, not yet the concept: the frame waits for evidence.
AMBIGUITY = 1.0
# A tracked candidate this close (fraction of ACCEPT) is kept without decoding the others.
SETTLE = 0.5
# Split options within this many units of the nearest are decided by the head.
OPTION_TIE = 0.5
# A candidate held back only by doubtful distractors (``Distractor.doubtful``: followed across where the
# concept was expected) is decoded only when nothing else passed, and taken only within RECHECK ×
# accept (plainly the concept on every cue): the distractor had been carried onto the concept.
RECHECK = 0.75
MAX_CALIBRATION_NEGATIVES = 8
OWN_DECODE_IOU = 0.8
# Hue turns (degrees) of the first shot's object, learnt as negatives.
RECOLOUR_SHIFTS = (120.0, 240.0)
# In-plane turns (degrees) of every shot's object (``turned_shot``), learnt as positives and decoded as
# references of the region check.
SHOT_TURNS = (90.0, 180.0, 270.0)
OUTLINE = CUES.index("outline")
# Look-alike silhouettes kept per concept for border-cut masks (``CueCheck.rivals``).
MAX_RIVALS = 4
# The tracked candidate's mask continues the track where at least CONTINUES_INSIDE of it lies on the
# object's last mask (moved on by the track, grown by the track's margin: ``LastMask.reach``); where at
# least PARTLY_HIDDEN_INSIDE does and it covers at most PARTLY_HIDDEN_AREA of that mask's area, it is
# the object partly hidden (``partly_hidden``): an occluder cuts its outline.
CONTINUES_INSIDE = 0.5
PARTLY_HIDDEN_INSIDE = 0.9
PARTLY_HIDDEN_AREA = 0.9
# A tracked mask is also checked within its last mask's reach (``within_reach``) when that keeps at least
# this share of it and cuts off at least WITHIN_REACH_CUT.
WITHIN_REACH_KEPT = 0.6
WITHIN_REACH_CUT = 0.02


@dataclass
class FrameDecision:
    """Per concept: owned-candidate ``H×W bool`` mask or None, presence score, decoder score, maps.

    ``margins``: per concept, how clearly the chosen mask passed the region cues, ``1 - distance /
    limit`` (1 a perfect match, 0 at the acceptance limit; 1.0 where no cues decided); 0.0 with no mask.
    """

    masks: list[np.ndarray | None]
    presence: list[float]
    decode_scores: list[float]
    image_maps: torch.Tensor | None = None
    margins: list[float] = field(default_factory=list)


@dataclass
class CandidateTrace:
    """One decoded candidate of one concept and what the region check made of it (``segment_frame``'s
    ``trace``): for explaining a miss or a wrong pick, not used by the decision.

    ``concept``: index into the frame's concepts; ``mask``: the ``H×W bool`` option that was scored;
    ``units``: per cue (``CUES`` order) its weighted distance in the concept's units (None when it
    could not be described); ``distance``/``limit``: their sum and the most that passes; ``tracked``:
    it continued the concept's track; ``cut``: the image border cuts it; ``chosen``: the frame's pick.
    """

    concept: int
    mask: np.ndarray
    units: np.ndarray | None
    distance: float
    limit: float
    tracked: bool
    cut: bool
    chosen: bool = False


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


def candidate_request(candidate: Candidate, others: list[Candidate], logits: torch.Tensor,
                      features: Features, embedding: torch.Tensor, track: TrackPrompt | None,
                      scale_weights: torch.Tensor | None = None) -> CascadeRequest:
    """Cascade prompts for decoding ``candidate`` (see the module docstring, step 3)."""
    points = [candidate.peak]
    labels = [1]
    box = track_box = None
    region = grow_cells(candidate.cells, max(1, round(REGION_MARGIN_PX / cell_pixels(features))))
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


def plan_candidates(eligible: list[Candidate], track: TrackPrompt | None, on_track: np.ndarray | None,
                    at_track: Candidate | None, last_cells: np.ndarray | None = None
                    ) -> tuple[list[Candidate], Candidate | None]:
    """The order in which a concept's ``eligible`` candidates (best first) are decoded, and the one that
    continues the track (``_continues``; ``on_track``: the track window's ``h×w`` bool cells), or None.

    That one comes first: of those that continue it, the one with most cells on the object's last mask
    (``last_cells``, ``h×w`` bool; None: the best one), so a look-alike beside the object that the head
    scores higher does not take the tracked candidate's place. The track's own box (``at_track``,
    ``track_candidate``) comes next when no eligible candidate has its peak inside the predicted box:
    the head may have lost the object there while something beside it touches the window.
    """
    cont = [c for c in eligible if on_track is not None and track is not None and _continues(c, on_track, track)]
    if last_cells is not None and cont:
        cont = sorted(cont, key=lambda c: -int((c.cells & last_cells).sum()))  # stable: best score among equals
    tracked = cont[0] if cont else None
    plan = list(eligible)
    if tracked is not None:
        plan = [tracked] + [c for c in plan if c is not tracked]
    if at_track is not None and track is not None and not any(_peak_in(c, track) for c in eligible):
        plan.insert(0 if tracked is None else 1, at_track)
    return plan, tracked


def track_candidate(logits: torch.Tensor, features: Features, track: TrackPrompt, top_k: int,
                    distractors: list[np.ndarray]) -> Candidate | None:
    """A candidate where the track expects its object though the head found none there: the cells of
    the predicted box (``track.predicted``) around its best logit, or None for a track with no
    predicted box, or whose box a distractor's cells (``h×w`` bool each) reach. It is decoded and
    checked as a new detection (no tracked slack): the head misses a turned or partly hidden object
    more often than the region check does."""
    predicted = getattr(track, "predicted", None)
    if predicted is None:
        return None
    cells = _box_cells(predicted, features)
    vh, vw = features.valid_hw
    cells[vh:, :] = False
    cells[:, vw:] = False
    if not cells.any() or any((d & cells).any() for d in distractors):
        return None
    grid = logits.detach().float().numpy()
    inside = np.where(cells, grid, -np.inf)
    row, col = np.unravel_index(int(np.argmax(inside)), grid.shape)
    px = cell_pixels(features)
    return Candidate(cells=cells, peak=((col + 0.5) * px, (row + 0.5) * px),
                     score=region_score(grid, cells, top_k), at_track=True)


def acceptance_limit(cues: CueCheck, tracked: bool, desc: RegionDescriptor | None = None,
                     distance: float | None = None) -> float:
    """The largest summed cue distance that passes: ``cues.accept``, ``TRACKED_SLACK`` × that for the
    candidate that continues the track.

    Given the candidate's description ``desc`` and its ``distance`` beyond ``cues.accept``, and with
    ``cues.negatives``, the limit also depends on whether the candidate is nearer the shots than every
    negative (``CueCheck.negative_distance``; the tracked candidate's border-cut outline left out on
    both sides): nearer, ``NEARER_SLACK`` × accept for a new candidate (a border-cut one excepted: its
    outline was measured against a placed, cut shot, the negatives are whole); not nearer,
    ``NEGATIVE_TRACKED_SLACK`` × accept for the tracked one and accept for a new one. A new candidate
    that the border does not cut and that lies nearer a negative than the shots does
    not pass whatever its distance: the limit is then its negative distance, which it exceeds (the veto).
    """
    slack = TRACKED_SLACK if tracked else 1.0
    if desc is None or distance is None or not cues.negatives:
        return cues.accept * slack
    if not tracked and not desc.cut:
        # Nearer a look-alike seen at teach time than the shots: that look-alike's kind, even within accept.
        nearest = cues.negative_distance(desc)
        if nearest < distance:
            return min(cues.accept, nearest)
    if distance <= cues.accept:
        return cues.accept * slack
    if desc.cut and not tracked:
        return cues.accept
    if distance <= cues.negative_distance(desc, trust_cut_outline=not tracked):
        return cues.accept * max(slack, NEARER_SLACK)
    return cues.accept * (NEGATIVE_TRACKED_SLACK if tracked else 1.0)


def _best_option(mask: np.ndarray, rgb: np.ndarray, cues: CueCheck, image_map: torch.Tensor,
                 tracked: bool = False, track: TrackPrompt | None = None
                 ) -> tuple[np.ndarray, float, RegionDescriptor | None, np.ndarray | None, bool]:
    """The mask, its part where a touching neighbour is split off, its part in the concept's own colours
    (``colour_support``: a spill onto an occluder or the background cut off), or, for a mask that reaches
    the image border, its part the head takes for the concept (``head_support``: a spill onto dark
    background between the object and the border), that looks most like the concept.

    Returns that ``H×W bool`` mask, its summed cue distance (``CueCheck.distance``; inf when no
    option can be described), its description, its weighted cue units (None both then) and whether it
    is judged as continuing the track. Among options within ``OPTION_TIE`` units the one the head likes
    best (mean of the ``H×W`` logit map over it) wins.

    For the ``tracked`` candidate an option continues the track where it stays on the object's last
    mask (``on_last_mask``; any option when ``track`` has none); those options also come without thin
    strips (``without_strips``), the outline of one the image border cuts is left out (the object is
    being followed out of view), and one that fails and is the object partly hidden
    (``partly_hidden``) is judged without its outline (its description's ``outline`` None), which an
    occluder cuts. A border-cut option that the whole shots turn down is also measured against a shot
    placed over it and cut like it (``CueCheck.cut_units``), each cue the nearer of the two.
    """
    scored = []
    options = outline_options(mask)
    trimmed = colour_support(rgb, mask, cues.support)
    if trimmed is not None:
        options.append(trimmed)
    liked = head_support(mask, image_map) if touches_border(mask) else None
    if liked is not None:
        options.append(liked)
    last = last_mask_of(track) if tracked else None
    within = within_reach(mask, last)
    if within is not None:
        options.append(within)
    held = [tracked and continues_last_mask(option, last) for option in options]
    for option in [o for o, h in zip(options, held, strict=True) if h]:
        # A handle as thin as a strip goes too, so only where the track vouches for the object.
        stripped = without_strips(option)
        if stripped is not None:
            options.append(stripped)
            held.append(True)
    for option, on_track in zip(options, held, strict=True):
        desc = describe_region(rgb, option)
        if desc is None:
            continue
        units = cues.weighted_units(desc, trust_cut_outline=not on_track)
        if desc.cut and units.sum() > acceptance_limit(cues, on_track):
            placed = cues.cut_units(desc, option, outline=not on_track)
            if placed is not None:
                units = np.minimum(units, placed)
        if (on_track and desc.outline is not None and units.sum() > acceptance_limit(cues, True)
                and partly_hidden(option, last)):
            desc = replace(desc, outline=None)
            units = cues.weighted_units(desc, trust_cut_outline=False)
        scored.append((float(units.sum()), float(image_map[torch.from_numpy(option)].mean()), option, desc, units,
                       on_track))
    if not scored:
        return np.asarray(mask, bool), float("inf"), None, None, tracked
    nearest = min(item[0] for item in scored)
    distance, _, option, desc, units, on_track = max((item for item in scored if item[0] <= nearest + OPTION_TIE),
                                                     key=lambda item: item[1])
    return option, distance, desc, units, on_track


def _best_option_in_views(mask: np.ndarray, lit: _FrameLight, cues: CueCheck, image_map: torch.Tensor,
                          tracked: bool = False, track: TrackPrompt | None = None
                          ) -> tuple[np.ndarray, float, RegionDescriptor | None, np.ndarray | None, bool]:
    """``_best_option`` in each of the frame's views for ``cues`` (``_FrameLight.views``): the one with the
    smallest distance (the view under the shots' light on a tie)."""
    return min((_best_option(mask, view, cues, image_map, tracked, track) for view in lit.views(cues)),
               key=lambda judged: judged[1])


def judge_region(mask: np.ndarray, rgb: np.ndarray, cues: CueCheck, light_correction: bool = True
                 ) -> tuple[float, float]:
    """How the region check judges an ``H×W bool`` ``mask`` of the ``H×W×3 uint8 RGB`` frame ``rgb`` as a
    new detection (not continuing a track) -> ``(distance, limit)``; it passes when ``distance <= limit``.

    The mask is weighed as a decoded one is (``_best_option``: its split, colour-supported and
    border-cut options too), without the head's support (no logit map). For diagnosis: would the
    object's true mask have passed (``perovss bench core --explain``)?
    """
    _, distance, desc, _, _ = _best_option_in_views(mask, _FrameLight(rgb, enabled=light_correction), cues,
                                                    torch.zeros(np.asarray(mask).shape))
    return distance, acceptance_limit(cues, False, desc, distance)


def segment_frame(decoder: MaskDecoder, features: Features, rgb: np.ndarray, concepts: list, tracks: dict,
                  gate: bool, timings: dict[str, float] | None = None, cascade: str = "full",
                  trace: list[CandidateTrace] | None = None,
                  distractors: dict[str, DistractorMemory] | None = None,
                  light_correction: bool = True) -> FrameDecision:
    """Find, decide and decode every concept (with an ``identity`` model) in one encoded frame.

    ``concepts``: ``Concept`` objects; ``tracks``: name -> (expanded predicted box, centre) or None;
    ``gate`` False decodes each concept's best candidate whatever its score and cues (teach-time
    self-check). The masks are not yet resolved against each other (``image_maps`` are the
    priorities). ``timings`` receives ``match`` (heads and candidates), ``prompt``, ``decode`` and
    ``verify`` (region cues) seconds; ``cascade`` is the decode cascade's mode (``run_cascade``).
    ``trace``, when given, receives a ``CandidateTrace`` per decoded candidate (for diagnosis).
    ``distractors``: name -> the concept's ``DistractorMemory`` (``core/distractors.py``), moved on and
    taught in place; a candidate that continues a distractor is not decoded. None: no distractors.
    ``light_correction``: describe candidates under each concept's shots' light too (``_FrameLight.views``).
    """
    timings = {} if timings is None else timings
    tick = time.perf_counter()
    lit = _FrameLight(rgb, enabled=gate and light_correction)
    k = len(concepts)
    models = [c.identity for c in concepts]
    maps = logit_maps(models, features.grid)
    px = cell_pixels(features)
    candidates = [find_candidates(maps[i], features.valid_hw, px, c.presence_k, limit=MAX_CANDIDATES)
                  for i, c in enumerate(concepts)]
    decision = FrameDecision([None] * k, [cands[0].score for cands in candidates], [0.0] * k, margins=[0.0] * k)
    plans: dict[int, list[Candidate]] = {}
    # Per concept: candidates held back only by doubtful distractors, checked last and strictly (RECHECK).
    rechecks: dict[int, list[Candidate]] = {}
    tracked: dict[int, Candidate | None] = {}
    for i, concept in enumerate(concepts):
        model = models[i]
        memory = distractors.get(concept.name) if distractors is not None and gate else None
        track = tracks.get(concept.name)
        on_track = _box_cells(track[0], features) if track is not None else None
        followed = doubted = [False] * len(candidates[i])
        if memory is not None:
            followed = memory.associate([c.cells for c in candidates[i]], on_track)
            doubted = memory.held_by_doubt
        if gate:
            eligible = [c for c, f in zip(candidates[i], followed, strict=True)
                        if not f and c.score >= min(model.threshold, 0.0)]
            # Held back only by distractors that passed where the concept was expected: one of them may have
            # been carried onto it.
            held = [c for c, d in zip(candidates[i], doubted, strict=True) if d and c.score >= model.threshold]
            if held:
                rechecks[i] = held
        else:
            eligible = candidates[i][:1]
        at_track = None
        if gate and track is not None:
            at_track = track_candidate(maps[i], features, track, concept.presence_k,
                                       [c.cells for c, f in zip(candidates[i], followed, strict=True) if f])
        last = getattr(track, "last_mask", None)
        last_cells = matching.mask_to_grid(last, features).numpy() >= 0.5 if last is not None else None
        plan, tracked[i] = plan_candidates(eligible, track, on_track, at_track, last_cells)
        if plan:
            plans[i] = plan
    timings["match"] = time.perf_counter() - tick
    if not plans and not rechecks:
        return decision
    decision.image_maps = matching.upsample_to_image(maps, features)
    refine = decoder_has_logits(decoder)
    best: dict[int, tuple[float, np.ndarray, float, float, Candidate, bool]] = {}  # cost, mask, decoder score,
    # margin, candidate, sure (the tracked candidate, plainly passing on every cue: a frame distractors are learnt in)
    traced: dict[int, CandidateTrace] = {}  # the trace entry of each concept's current best
    passed: dict[int, list[tuple[float, np.ndarray]]] = {}  # per concept: cost and mask of each untracked pass
    released: set[int] = set()  # concepts whose pick is a held-back candidate that passed the recheck
    best_tracked: dict[int, bool] = {}  # per concept: whether its current best was judged as continuing the track
    # Round 1: each concept's tracked candidate (or its best one). A tracked candidate that clearly
    # passes the cues (SETTLE) is kept without decoding the rest: continuity, and one decode per
    # concept in the common case. Round 2: the rest of the first MAX_DECODES; round 3: the others,
    # only for a concept none of whose candidates has passed yet; round 4, for such a concept still,
    # the candidates held back as continuing a distractor, within RECHECK × accept.
    settled: set[int] = set()
    rounds = ((0, 1), (1, MAX_DECODES), (MAX_DECODES, MAX_CANDIDATES))
    for stage in range(len(rounds) + 1):
        recheck = stage == len(rounds)
        if recheck:
            todo = [(i, n, held[n]) for i, held in rechecks.items() if i not in best for n in range(len(held))]
        else:
            start, stop = rounds[stage]
            todo = [(i, n, plan[n]) for i, plan in plans.items() if i not in settled and (stage < 2 or i not in best)
                    for n in range(start, min(stop, len(plan)))]
        if not todo:
            continue
        tick = time.perf_counter()
        requests = []
        for i, _, cand in todo:
            requests.append(candidate_request(cand, _elsewhere(cand, candidates[i]), maps[i], features,
                                              concepts[i].embedding, tracks.get(concepts[i].name),
                                              concepts[i].scale_weights))
        timings["prompt"] = timings.get("prompt", 0.0) + time.perf_counter() - tick
        tick = time.perf_counter()
        decoded = run_cascade(decoder, features, rgb, requests, mode=cascade, refine=refine)
        timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - tick
        tick = time.perf_counter()
        for row, (i, n, cand) in enumerate(todo):
            mask, cues = decoded.masks[row], models[i].cues
            if not mask.any():
                continue
            is_tracked = cand is tracked[i]
            entry = None  # this row's trace entry, when tracing
            if gate and cues is not None:
                mask, distance, desc, units, is_tracked = _best_option_in_views(
                    mask, lit, cues, decision.image_maps[i], is_tracked, tracks.get(concepts[i].name))
                limit = acceptance_limit(cues, is_tracked, desc, distance)
                if recheck:
                    limit = min(limit, RECHECK * cues.accept)
                if trace is not None:
                    entry = CandidateTrace(i, mask, units, distance, limit, is_tracked,
                                           desc is not None and desc.cut)
                    trace.append(entry)
                if distance > limit:
                    continue
                margin = 1.0 - distance / limit
                if is_tracked and distance <= SETTLE * cues.accept:
                    settled.add(i)
                # Sure enough to learn distractors from: a border-cut tracked mask, whose outline was
                # left out, must also pass with it (as a new detection would); a partly hidden one
                # (outline None) is not sure.
                sure = i in settled and desc is not None and desc.outline is not None and (
                    not desc.cut or cues.distance(desc, trust_cut_outline=True) <= cues.accept)
                # The head's own view breaks near-ties: one unit for a candidate that scores like the shots.
                head = (cand.score - models[i].threshold) / max(models[i].fg_low - models[i].threshold, 0.5)
                cost = distance - HEAD_WEIGHT * float(np.clip(head, -1.0, 1.0)) - (TRACK_BONUS if is_tracked else 0.0)
                if not is_tracked:
                    passed.setdefault(i, []).append((cost, mask))
            else:
                cost, margin, sure = float(n), 1.0, False
                settled.add(i)
            if i not in best or cost < best[i][0]:
                best[i] = (cost, mask, float(decoded.scores[row]), margin, cand, sure)
                if recheck:
                    released.add(i)
                best_tracked[i] = is_tracked
                if entry is not None:
                    traced[i] = entry
        timings["verify"] = timings.get("verify", 0.0) + time.perf_counter() - tick
    for i in list(best):
        if not best_tracked[i] and _ambiguous(best[i][0], best[i][1], passed.get(i, [])):
            del best[i]
            traced.pop(i, None)
    for i, (_, mask, score, margin, cand, sure) in best.items():
        decision.masks[i] = mask
        decision.decode_scores[i] = score
        decision.margins[i] = margin
        if i in released and distractors is not None and concepts[i].name in distractors:
            # A distractor had taken on the concept itself (it passed on every cue): it is not one.
            distractors[concepts[i].name].release(cand.cells)
        if sure and distractors is not None and concepts[i].name in distractors:
            taken = cand.cells | (matching.mask_to_grid(mask, features).numpy() > 0)
            distractors[concepts[i].name].learn([c.cells for c in candidates[i]], [c.score for c in candidates[i]],
                                                taken)
    for entry in traced.values():
        entry.chosen = True
    return decision


def fit_identity(decoder: MaskDecoder, images: list[np.ndarray], masks: list[np.ndarray],
                 features: list[Features], fg_cells: list[torch.Tensor], embedding: torch.Tensor,
                 top_k: int, encode=None, turns: tuple[float, ...] = SHOT_TURNS) -> IdentityModel:
    """Fit and calibrate a concept's identity model on its shots (see the module docstring).

    ``images``/``masks``: the shots (``H×W×3 uint8 RGB`` / ``H×W bool``); ``fg_cells``: per shot the
    ``h×w`` bool object cells of its grid. ``encode``: the backend's ``ImageEncoder.encode``, for
    the recoloured shot and the turned ones (None: neither). ``turns``: the angles each shot is turned
    by, learnt as the concept too and decoded as region-check references (``turned_shot``; empty: none).
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
    turned = None
    turned_views: list[TurnedView] = []
    if encode is not None and turns:
        # Every shot turned: the direction of its pattern in the image is not part of the concept
        # (the object turns), so the head must not tell a look-alike apart by it; and the decoder's
        # masks of the turned object are references of the region check (``_calibrate_cues``).
        turned = []
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            cells = []
            for angle in turns:
                t_image, t_mask = turned_shot(image, mask, angle)
                t_feats = encode(t_image)
                t_cells = matching.mask_to_grid(t_mask, t_feats) >= 0.5
                cells.append(normalised_cells(t_feats.grid, t_cells))
                turned_views.append(TurnedView(i, t_image, t_mask, t_feats, t_cells.numpy()))
            turned.append(torch.cat(cells))
    full, held_out = fit_shot_heads(grids, fg_cells, bg_cells, extra_neg, turned)
    fg_scores, own, off_candidates = [], [], []
    for i, f in enumerate(features):
        # What the object scores in a frame the head has not seen (leave-one-out) ...
        logits = held_out[i].logits(f.grid)
        cands = find_candidates(logits, f.valid_hw, cell_pixels(f), top_k, limit=8)
        on, _ = split_candidates(cands, fg_cells[i].numpy())
        fg_scores.append(max((c.score for c in on), default=region_score(logits.numpy(), fg_cells[i].numpy(),
                                                                          top_k)))
        # ... and what the look-alikes still score after the head has seen them as negatives.
        on, off, cands = _object_candidates(full, f, fg_cells[i].numpy(), top_k)
        own.append((i, on[0], cands) if on else None)
        off_candidates += [(i, c, cands) for c in off]
    off_candidates = sorted(off_candidates, key=lambda item: -item[1].score)[:MAX_CALIBRATION_NEGATIVES]
    cues, off_distances = _calibrate_cues(decoder, images, masks, features, full, embedding,
                                          [o for o in own if o is not None], off_candidates,
                                          turned_views, top_k)
    # A look-alike that the region cues reject does not raise the head's threshold: the head only
    # has to keep out what the cues could not.
    bg_scores = [c.score for (_, c, _), d in zip(off_candidates, off_distances, strict=True)
                 if cues is None or d <= cues.accept]
    # No look-alike candidate at all: the head's own boundary (logit 0) is the best background.
    cal = presence.calibrate(fg_scores, bg_scores or [0.0])
    # Below logit 0 the head itself says "not the concept", whatever the shots' spread.
    return IdentityModel(head=full, threshold=max(cal.threshold, 0.0), fg_low=cal.fg_low, bg_high=cal.bg_high,
                         cues=cues)


class TurnedView(NamedTuple):
    """A shot turned by one of ``SHOT_TURNS`` (``turned_shot``), encoded: ``shot`` its index, ``image``
    ``H×W×3 uint8 RGB``, ``mask`` ``H×W bool``, ``features`` its encoding and ``cells`` the ``h×w`` bool
    grid cells at least half covered by the object."""

    shot: int
    image: np.ndarray
    mask: np.ndarray
    features: Features
    cells: np.ndarray


def turned_shot(rgb: np.ndarray, mask: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``H×W×3 uint8 RGB`` shot and its ``H×W bool`` mask turned by ``angle`` degrees about the object's
    centre; the corners the turn uncovers are mirrored in."""
    ys, xs = np.nonzero(mask)
    centre = (float(xs.mean()), float(ys.mean()))
    h, w = mask.shape
    turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
    image = cv2.warpAffine(rgb, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    turned = cv2.warpAffine(mask.astype(np.uint8), turn, (w, h), flags=cv2.INTER_NEAREST) > 0
    return image, turned


@dataclass
class _FrameLight:
    """One frame (``H×W×3 uint8 RGB``) under the lights of the concepts' shots, for their region checks.

    The frame's light is estimated on the first ``under`` call (a frame whose candidates are never
    decoded costs nothing), and each relit frame is kept by its gains (concepts taught under one light
    share one). ``enabled`` False: the frame as it is, always."""

    rgb: np.ndarray
    enabled: bool
    _light: np.ndarray | None = None
    _relit: dict[bytes, np.ndarray] = field(default_factory=dict)

    def under(self, cues: CueCheck) -> np.ndarray:
        """The frame as it would look under the light of ``cues``' shots (``cues.light``;
        ``illuminant.light_change``); the frame itself under the same light or with no light to compare."""
        if not self.enabled or cues.light is None:
            return self.rgb
        if self._light is None:
            self._light = illuminant(self.rgb)
        gains = light_change(self._light, cues.light)
        key = gains.tobytes()
        if key not in self._relit:
            self._relit[key] = relit(self.rgb, gains)
        return self._relit[key]

    def views(self, cues: CueCheck) -> tuple[np.ndarray, ...]:
        """The frames a region is judged in for ``cues``: under the shots' light (``under``) and, where that
        differs from the frame, the frame itself; the region's nearer description counts. The light's
        estimate moves a few per cent when the objects in view change under the same light, and near-white
        colours then cross chromaticity bins: a wrong correction must not turn the object down."""
        relit_frame = self.under(cues)
        return (relit_frame,) if relit_frame is self.rgb else (relit_frame, self.rgb)


def head_support(mask: np.ndarray, image_map: torch.Tensor) -> np.ndarray | None:
    """The part of the ``H×W bool`` ``mask`` that the concept's head takes for the concept (``H×W`` logit
    map above 0), cleaned as ``appearance.supported_part``; None when that trims too little or too much.
    A decode that spilled onto background as dark as the object's dark parts (whose chromaticity
    ``colour_support`` cannot judge) loses what the head, trained against the teach frames'
    background, does not like."""
    ys, xs = np.nonzero(mask)
    return supported_part(mask, image_map.numpy()[ys, xs] > 0.0)


class LastMask(NamedTuple):
    """The tracked object's last ``H×W bool`` mask moved on by the track (``TrackPrompt.last_mask``), its
    ``area`` in pixels, and ``reach``: the mask grown by the track's margin for the object's motion and
    turn since (``H×W bool``), where a mask of the same object lies."""

    mask: np.ndarray
    area: int
    reach: np.ndarray


def last_mask_of(track: TrackPrompt | None) -> LastMask | None:
    """``track``'s ``LastMask``, built once per decoded candidate and shared by its options; None without one."""
    last = getattr(track, "last_mask", None)
    if last is None:
        return None
    reach = np.zeros_like(last)
    rows, cols = np.nonzero(last)
    if cols.size:
        grow = max(1, round(margin_px(last.shape)))
        y0, x0 = max(0, rows.min() - grow), max(0, cols.min() - grow)
        y1, x1 = rows.max() + grow + 1, cols.max() + grow + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        reach[y0:y1, x0:x1] = cv2.dilate(last[y0:y1, x0:x1].astype(np.uint8), kernel) > 0
    return LastMask(last, int(cols.size), reach)


def on_last_mask(mask: np.ndarray, last: LastMask | None) -> float | None:
    """The share of the ``H×W bool`` ``mask`` that lies within the last mask's ``reach``; None without a
    last mask of this size, 0.0 for an empty mask."""
    if last is None or last.mask.shape != mask.shape:
        return None
    area = int(mask.sum())
    return int((mask & last.reach).sum()) / area if area else 0.0


def within_reach(mask: np.ndarray, last: LastMask | None) -> np.ndarray | None:
    """The tracked candidate's ``H×W bool`` ``mask`` cut back to its last mask's ``reach`` (where the object
    can be now): a decode that spilled onto a neighbour or the background beyond it loses the spill. None
    without a last mask of this size, or when that keeps less than ``WITHIN_REACH_KEPT`` of the mask (then
    the mask is not the object moved on: no cut makes it so) or cuts off less than ``WITHIN_REACH_CUT``."""
    share = on_last_mask(mask, last)
    if share is None or not WITHIN_REACH_KEPT <= share <= 1.0 - WITHIN_REACH_CUT:
        return None
    return mask & last.reach


def continues_last_mask(mask: np.ndarray, last: LastMask | None) -> bool:
    """Whether the tracked candidate's ``H×W bool`` ``mask`` continues its track: at least
    ``CONTINUES_INSIDE`` of it on the object's last mask (``on_last_mask``), or the track has no last
    mask. A look-alike beside the object, whose candidate touched the track's window, does not."""
    share = on_last_mask(mask, last)
    return share is None or share >= CONTINUES_INSIDE


def partly_hidden(mask: np.ndarray, last: LastMask | None) -> bool:
    """Whether the ``H×W bool`` ``mask`` of the tracked candidate is its object partly hidden: at least
    ``PARTLY_HIDDEN_INSIDE`` of it on the object's last mask (``on_last_mask``), covering at most
    ``PARTLY_HIDDEN_AREA`` of that mask's area. False without a last mask. A look-alike beside the
    object, or a mask that spilled onto one, lies outside the last mask."""
    if last is None or int(mask.sum()) > PARTLY_HIDDEN_AREA * last.area:
        return False
    share = on_last_mask(mask, last)
    return share is not None and share >= PARTLY_HIDDEN_INSIDE


def _ambiguous(cost: float, mask: np.ndarray, passed: list[tuple[float, np.ndarray]]) -> bool:
    """Whether an untracked pick of ``cost`` and ``mask`` is one of two: another untracked candidate
    elsewhere (mask IoU below 0.5) among the ``passed`` (cost, mask) passed within ``AMBIGUITY`` of it."""
    return any(m is not mask and c <= cost + AMBIGUITY and matching.mask_iou(m, mask) < 0.5 for c, m in passed)


def _continues(candidate: Candidate, on_track: np.ndarray, track: TrackPrompt) -> bool:
    """Whether ``candidate`` continues the track: it touches the track's window (``on_track``, ``h×w``
    bool cells) and, for a track coasting over frames where the concept was not found, has its peak
    inside the predicted box itself (a look-alike beside where the hidden object should be must
    not take the track over)."""
    if not bool((candidate.cells & on_track).any()):
        return False
    if not getattr(track, "missed", 0) or getattr(track, "predicted", None) is None:
        return True
    return _peak_in(candidate, track)


def _peak_in(candidate: Candidate, track: TrackPrompt) -> bool:
    """Whether ``candidate``'s peak lies inside the track's predicted box."""
    predicted = getattr(track, "predicted", None)
    if predicted is None:
        return False
    x, y = candidate.peak
    return predicted[0] <= x <= predicted[2] and predicted[1] <= y <= predicted[3]


def _elsewhere(candidate: Candidate, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates that share no cell with ``candidate`` (not a part of it, nor its whole): the
    ones whose peaks are negative evidence for it."""
    return [c for c in candidates if not (c.cells & candidate.cells).any()]


def _object_candidates(head, features: Features, cells: np.ndarray, top_k: int
                       ) -> tuple[list[Candidate], list[Candidate], list[Candidate]]:
    """The candidates ``head`` finds in a teach image's ``features`` as in a frame, split into those on the
    object's ``h×w`` bool ``cells`` and the others (``split_candidates``), and all of them."""
    cands = find_candidates(head.logits(features.grid), features.valid_hw, cell_pixels(features), top_k,
                            limit=MAX_CANDIDATES)
    on, off = split_candidates(cands, cells)
    return on, off, cands


def _decode_candidates(decoder: MaskDecoder, images: list[np.ndarray], features: list[Features], head,
                       embedding: torch.Tensor, items: list[tuple[int, Candidate, list[Candidate]]]
                       ) -> list[np.ndarray]:
    """Decode ``(shot, candidate, all candidates)`` items as a frame would, one batched call per shot."""
    masks: list[np.ndarray | None] = [None] * len(items)
    for i in sorted({i for i, _, _ in items}):
        rows = [r for r, item in enumerate(items) if item[0] == i]
        logits = head.logits(features[i].grid)
        requests = [candidate_request(items[r][1], _elsewhere(items[r][1], items[r][2]), logits, features[i],
                                      embedding, None) for r in rows]
        out = run_cascade(decoder, features[i], images[i], requests, refine=decoder_has_logits(decoder))
        for r, mask in zip(rows, out.masks, strict=True):
            masks[r] = mask
    return masks


def _calibrate_cues(decoder: MaskDecoder, images: list[np.ndarray], masks: list[np.ndarray],
                    features: list[Features], head, embedding: torch.Tensor,
                    own: list[tuple[int, Candidate, list[Candidate]]],
                    off: list[tuple[int, Candidate, list[Candidate]]],
                    turned: Sequence[TurnedView] = (), top_k: int = 1) -> tuple[CueCheck | None, list[float]]:
    """The concept's ``CueCheck`` and each ``off`` candidate's summed cue distance (decoded as a frame
    would be; inf where nothing could be described).

    The references are the shots' masks and the masks the decoder makes of the object in the shots
    and in the ``turned`` shots (each decoded from its best candidate on the object, as a frame would
    be, ``top_k`` its presence pooling), so its own habits, e.g. a handle it loses at some angles, are part of "the same
    object"; a decode counts only at IoU ≥ ``OWN_DECODE_IOU`` with its shot's mask. The scale of
    each cue comes from the shots' spread (``cue_scale``); ``ACCEPT`` units is how far the sum may
    reach. None when no shot can be described. The check remembers the shots' light
    (``illuminant.shots_light``): a frame under another light is brought back to it (``_FrameLight``).
    """
    decoded = _decode_candidates(decoder, images, features, head, embedding, own + off)
    shots = [(i, describe_region(images[i], m)) for i, m in enumerate(masks)]
    shots = [(i, d) for i, d in shots if d is not None]
    habits = [(item[0], describe_region(images[item[0]], m)) for item, m in zip(own, decoded[:len(own)], strict=True)
              if matching.mask_iou(m, masks[item[0]]) >= OWN_DECODE_IOU]
    habits = [(i, d) for i, d in habits if d is not None]
    for view in turned:
        on, _, cands = _object_candidates(head, view.features, view.cells, top_k)
        if not on:
            continue
        m = _decode_candidates(decoder, [view.image], [view.features], head, embedding, [(0, on[0], cands)])[0]
        if matching.mask_iou(m, view.mask) >= OWN_DECODE_IOU:
            d = describe_region(view.image, m)
            if d is not None:
                habits.append((view.shot, d))
    references = shots + habits
    if not references:
        return None, [float("inf")] * len(off)
    # The scale comes from the shots' own masks: a decode that strayed must not widen it.
    scale = cue_scale(shots)
    silhouettes, views = shot_views(images, masks)
    plain = CueCheck(references=tuple(d for _, d in references), scale=scale, accept=ACCEPT,
                     silhouettes=silhouettes, views=views, light=shots_light(images))
    own_units = [cue_distances(d, [r for j, r in references if j != i]) / scale for i, d in habits]
    off_units, rivals, negatives = [], [], []
    for (i, _, _), mask in zip(off, decoded[len(own):], strict=True):
        desc = describe_region(images[i], mask)
        units = plain.cue_units(desc) if desc is not None else None
        off_units.append(units)
        if desc is not None:
            negatives.append(desc)
        # A whole look-alike that only its outline tells apart: a border-cut mask that fits it as
        # well as a shot does says nothing about which of the two it is (``CueCheck.cut_units``).
        if units is not None and not desc.cut and units.sum() - units[OUTLINE] <= ACCEPT:
            rivals.append(silhouette(mask))
    weights = cue_weights([u for u in own_units if np.isfinite(u).all()],
                          [u for u in off_units if u is not None], ACCEPT)
    cues = replace(plain, weights=weights, rivals=tuple(r for r in rivals[:MAX_RIVALS] if r is not None),
                   negatives=tuple(negatives))
    distances = [float((weights * u).sum()) if u is not None else float("inf") for u in off_units]
    return cues, distances
