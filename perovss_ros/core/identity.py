"""Identity: what separates a concept from what it is not, on the backend's own features.

A cosine match against one mean target vector knows nothing about look-alikes: a mug of the
same colour but another pattern, or the same pattern in another colour, lights up almost as
much as the real one. At teach time the shots also show what the concept is *not* (look-alikes
in view, background that resembles it). ``fit_identity_head`` learns a per-concept linear
logistic head on the grid cells: the object's cells against every other cell, with the cells
that resemble the concept most ("hard negatives", the personalised-OVSS paper's negative
proposals applied to matching) weighted up. Its logit map replaces the cosine map for finding
candidates and deciding presence.

``find_candidates`` turns a logit map into candidate regions (connected groups of cells the
head accepts, and the parts of a group around its separate peaks), each scored by the mean of its
``k`` best logits over the region and a one-cell ring around it, so a small patch that merely
shares a colour scores lower than a whole object.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core.appearance import CueCheck

# Hard negatives: negative cells at or above this quantile of cosine similarity to the concept.
HARD_QUANTILE = 0.9
HARD_WEIGHT = 4.0
# L2 penalty on the head's weight vector (features are unit vectors, so logits stay moderate).
L2_PENALTY = 1e-3
LBFGS_STEPS = 40


@dataclass(frozen=True)
class IdentityHead:
    """Per-concept linear head on L2-normalised ``C`` cell features: logit = weight · x + bias."""

    weight: torch.Tensor
    bias: float

    def logits(self, grid: torch.Tensor) -> torch.Tensor:
        """Logit map of a ``C×h×w`` feature grid -> ``h×w`` float32 (> 0: the head says "the concept")."""
        c, h, w = grid.shape
        flat = F.normalize(grid.reshape(c, h * w).float(), dim=0)
        return (self.weight.float() @ flat + self.bias).reshape(h, w)


def normalised_cells(grid: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """L2-normalised features of the ``h×w`` bool ``cells`` of a ``C×h×w`` grid -> ``n×C`` float32."""
    return F.normalize(grid.permute(1, 2, 0)[cells.bool()].float(), dim=1)


def hard_negative_weights(negatives: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weight per negative ``n×C`` row: ``1 + HARD_WEIGHT`` for the rows most similar to ``target`` (C)."""
    if negatives.shape[0] == 0:
        return torch.zeros(0)
    sim = negatives @ F.normalize(target.float(), dim=0)
    hard = sim >= torch.quantile(sim, HARD_QUANTILE)
    return 1.0 + HARD_WEIGHT * hard.float()


def fit_identity_head(positives: torch.Tensor, negatives: torch.Tensor,
                      negative_weights: torch.Tensor | None = None) -> IdentityHead:
    """Weighted logistic regression of ``n×C`` positive rows against ``m×C`` negative rows.

    Both classes carry equal total weight (objects are small against the background); within the
    negatives ``negative_weights`` (``m``, default uniform) emphasise the hard ones. Deterministic
    (L-BFGS from zero). Raises ValueError when a class is empty.
    """
    if positives.ndim != 2 or negatives.ndim != 2 or positives.shape[0] == 0 or negatives.shape[0] == 0:
        raise ValueError(f"need n×C positives and m×C negatives, got {tuple(positives.shape)} and "
                         f"{tuple(negatives.shape)}")
    x = torch.cat([positives, negatives]).double()
    y = torch.cat([torch.ones(positives.shape[0]), torch.zeros(negatives.shape[0])]).double()
    neg_w = torch.ones(negatives.shape[0]) if negative_weights is None else negative_weights.float()
    sample_w = torch.cat([torch.full((positives.shape[0],), 1.0 / positives.shape[0]),
                          neg_w / neg_w.sum()]).double() / 2.0
    params = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=LBFGS_STEPS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logit = x @ params[:-1] + params[-1]
        loss = (sample_w * F.binary_cross_entropy_with_logits(logit, y, reduction="none")).sum()
        loss = loss + L2_PENALTY * (params[:-1] ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    params = params.detach()
    return IdentityHead(weight=params[:-1].float(), bias=float(params[-1]))


@dataclass
class Candidate:
    """One candidate region of a concept in a frame.

    ``cells``: ``h×w`` bool grid cells of the region; ``peak``: ``(x, y)`` image pixels of its best
    cell's centre; ``score``: mean of the ``k`` best logits over the region and its one-cell ring;
    ``at_track``: not a region of the head's map but the track's predicted box (``decide.track_candidate``).
    """

    cells: np.ndarray
    peak: tuple[float, float]
    score: float
    at_track: bool = False


def grow_cells(cells: np.ndarray, rings: int = 1) -> np.ndarray:
    """The ``h×w`` bool grid ``cells`` grown by ``rings`` cells in every direction (8-connected)."""
    size = 2 * rings + 1
    return cv2.dilate(cells.astype(np.uint8), np.ones((size, size), np.uint8)) > 0


def region_score(logits: np.ndarray, cells: np.ndarray, top_k: int) -> float:
    """Mean of the ``top_k`` best values of ``h×w`` ``logits`` over ``cells`` grown by one cell."""
    ring = grow_cells(cells)
    values = np.sort(logits[ring])[::-1]
    return float(values[:max(1, min(top_k, values.size))].mean())


# Peaks of a region: cells that are the maximum of the 3×3-smoothed logits within PEAK_RADIUS cells
# and stand PEAK_PROMINENCE above the lowest cell on the straight line to a higher peak.
PEAK_RADIUS = 2
PEAK_PROMINENCE = 1.0


def _parts_around_peaks(logits: np.ndarray, region: np.ndarray) -> list[np.ndarray]:
    """Split an ``h×w`` bool region of an ``h×w`` logit map among its separate peaks (each cell to
    the nearest peak); [] when it has one peak."""
    smooth = cv2.blur(np.where(region, logits, np.float32(logits.min())).astype(np.float32), (3, 3))
    size = 2 * PEAK_RADIUS + 1
    local_max = (smooth >= cv2.dilate(smooth, np.ones((size, size), np.uint8))) & region
    ys, xs = np.nonzero(local_max)
    order = np.argsort(-smooth[ys, xs])
    peaks: list[tuple[int, int]] = []
    for y, x in zip(ys[order], xs[order], strict=True):
        separate = True
        for py, px in peaks:
            steps = max(abs(py - y), abs(px - x)) + 1
            line = smooth[np.linspace(y, py, steps).round().astype(int), np.linspace(x, px, steps).round().astype(int)]
            if float(smooth[y, x]) - float(line.min()) < PEAK_PROMINENCE:
                separate = False
                break
        if separate:
            peaks.append((int(y), int(x)))
    if len(peaks) < 2:
        return []
    seeds = np.ones(region.shape, np.uint8)
    for y, x in peaks:
        seeds[y, x] = 0
    _, nearest = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    parts = [(nearest == nearest[y, x]) & region for y, x in peaks]
    return [p for p in parts if p.any()]


def find_candidates(logits: torch.Tensor, valid_hw: tuple[int, int], cell_to_image: float, top_k: int,
                    limit: int = 4) -> list[Candidate]:
    """Candidate regions of an ``h×w`` logit map, best first (at most ``limit``).

    A region is an 8-connected group of valid cells with a positive logit; a region with several
    separate peaks also gives its parts around them (``_parts_around_peaks``). When no cell is
    positive, the best cell alone is the one candidate (its score says how far off it is).
    ``cell_to_image``: image pixels per grid cell (``stride / scale``).
    """
    vh, vw = valid_hw
    grid = logits.detach().float().numpy()
    # Padding cells take the lowest valid logit: never positive, never better than a real cell.
    valid = np.full(grid.shape, float(grid[:vh, :vw].min()), np.float32)
    valid[:vh, :vw] = grid[:vh, :vw]
    positive = np.zeros(grid.shape, np.uint8)
    positive[:vh, :vw] = grid[:vh, :vw] > 0
    count, labels = cv2.connectedComponents(positive, connectivity=8)
    regions = [labels == i for i in range(1, count)]
    # Objects side by side make one connected region; its parts around separate peaks are
    # candidates too (the whole region stays one, in case it is a single object).
    regions += [part for region in regions for part in _parts_around_peaks(valid, region)]
    if not regions:
        best = np.zeros(grid.shape, bool)
        best[np.unravel_index(int(np.argmax(valid)), grid.shape)] = True
        regions = [best]
    scored = []
    for cells in regions:
        inside = np.where(cells, valid, -np.inf)
        row, col = np.unravel_index(int(np.argmax(inside)), grid.shape)
        peak = ((col + 0.5) * cell_to_image, (row + 0.5) * cell_to_image)
        scored.append(Candidate(cells=cells, peak=peak, score=region_score(valid, cells, top_k)))
    scored.sort(key=lambda c: -c.score)
    return scored[:limit]


# What a stored identity model was fitted with (``IdentityFit``). Bump IDENTITY_FIT_VERSION whenever
# fitting gives another model from the same shots: ``fit_identity`` and its calibration
# (``core/decide.py``), the head (``fit_shot_heads``) or the region cues (``core/appearance.py``,
# ``core/shape.py``). A stored model whose record differs is fitted again when the store is loaded.
IDENTITY_FIT_VERSION = 3


@dataclass(frozen=True)
class IdentityFit:
    """How an identity model was fitted: the code's ``version`` (``IDENTITY_FIT_VERSION``), the
    backend's ``model_id``, the ``turns`` (degrees) each shot was also learnt at (empty: turned
    shots off) and the decoder settings its region check was calibrated on (``decoder``: the
    decoder's ``fit_id``, e.g. the classic GrabCut's crop side; empty for a decoder without one).
    A stored model is used as it is only when its record equals the pipeline's."""

    version: int
    model_id: str
    turns: tuple[float, ...]
    decoder: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (``turned_shots`` is written for the reader; ``turns`` is what counts)."""
        return {"version": self.version, "model_id": self.model_id, "turned_shots": bool(self.turns),
                "turns": [float(t) for t in self.turns], "decoder": self.decoder}

    @classmethod
    def from_json(cls, data: object) -> IdentityFit:
        """The record of a ``to_json`` dict; ValueError when it is malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"identity_fit is not an object: {data!r}")
        version, model_id, turns = data.get("version"), data.get("model_id"), data.get("turns")
        decoder = data.get("decoder", "")  # records written before it existed: no decoder settings
        if (not isinstance(version, int) or isinstance(version, bool) or not isinstance(model_id, str)
                or not isinstance(turns, list) or not isinstance(decoder, str)
                or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in turns)):
            raise ValueError(f"identity_fit is malformed: {data!r}")
        return cls(version=version, model_id=model_id, turns=tuple(float(t) for t in turns), decoder=decoder)


@dataclass(frozen=True)
class IdentityModel:
    """Everything a concept needs to tell itself from look-alikes.

    ``head``: the cell head. ``threshold``: the score a candidate region needs to be decoded at
    all, calibrated leave-one-out on the shots (rule in ``core/presence.py``); ``fg_low``/``bg_high``:
    the scores it came from. ``cues``: the region check (colour, pattern, outline;
    ``core/appearance.py``) a decoded candidate must pass; None when no shot could be described.
    """

    head: IdentityHead
    threshold: float
    fg_low: float
    bg_high: float
    cues: CueCheck | None = None


def fit_shot_heads(grids: list[torch.Tensor], fg_cells: list[torch.Tensor], bg_cells: list[torch.Tensor],
                   extra_negatives: torch.Tensor | None = None, turned: list[torch.Tensor] | None = None
                   ) -> tuple[IdentityHead, list[IdentityHead]]:
    """The head on all shots and, per shot, the head fitted without it (leave-one-out).

    ``grids``: per shot ``C×h×w``; ``fg_cells``/``bg_cells``: per shot ``h×w`` bool object cells and
    cells the mask does not touch. ``extra_negatives``: ``m×C`` L2-normalised rows every head also
    learns to reject, as hard negatives (e.g. the object recoloured); ``turned``: per shot ``m×C``
    L2-normalised rows a head that fits the shot also accepts (the shot's object turned), so a shot
    left out is left out with its turns. With one shot the leave-one-out head is the full one.
    """
    pos = [normalised_cells(g, c) for g, c in zip(grids, fg_cells, strict=True)]
    neg = [normalised_cells(g, c) for g, c in zip(grids, bg_cells, strict=True)]
    extra = extra_negatives if extra_negatives is not None else torch.zeros(0, grids[0].shape[0])
    more = turned if turned is not None else [torch.zeros(0, grids[0].shape[0])] * len(grids)

    def fit(idx: list[int]) -> IdentityHead:
        p = torch.cat([pos[i] for i in idx] + [more[i].float() for i in idx])
        n = torch.cat([neg[i] for i in idx])
        weights = torch.cat([hard_negative_weights(n, p.mean(0)), torch.full((extra.shape[0],), 1.0 + HARD_WEIGHT)])
        return fit_identity_head(p, torch.cat([n, extra.float()]), weights)

    everything = list(range(len(grids)))
    full = fit(everything)
    if len(grids) == 1:
        return full, [full]
    return full, [fit([j for j in everything if j != i]) for i in everything]


def recoloured(rgb: np.ndarray, mask: np.ndarray, hue_shift_deg: float) -> np.ndarray:
    """``H×W×3 uint8 RGB`` with the hue of the ``H×W bool`` masked pixels turned by ``hue_shift_deg``.

    The object of another colour with the same outline and pattern (grey and white parts of the
    pattern stay as they are): a look-alike the teach frames may not show, made from the shot.
    """
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hue = hsv[..., 0].astype(np.int32)
    hue[mask] = (hue[mask] + round(hue_shift_deg / 2.0)) % 180  # OpenCV's 8-bit hue is 0..179
    hsv[..., 0] = hue.astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def split_candidates(candidates: list[Candidate], object_cells: np.ndarray) -> tuple[list[Candidate],
                                                                                    list[Candidate]]:
    """Candidates on the object (at least half of their cells in ``object_cells``) and the others."""
    on, off = [], []
    for cand in candidates:
        inside = int(np.logical_and(cand.cells, object_cells).sum())
        (on if 2 * inside >= int(cand.cells.sum()) else off).append(cand)
    return on, off
