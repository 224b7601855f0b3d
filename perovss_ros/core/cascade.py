"""PerSAM's decode cascade on any MaskDecoder, batched over K prompt sets.

1. First decode: the points (and a tracking box when given), single mask, with guidance.
   For a PerSAM-F concept instead: the 3 multimask logits from its positive point, combined
   with the concept's scale weights (no negative point, no guidance).
2. Refinement 1: the same points + the previous low-res logits as mask input, multimask,
   the mask with the best score. Skipped when the decoder gives no logits (classic), since
   it would repeat step 1 exactly.
3. Refinement 2: adds the tight box of that mask (and its logits when available), multimask,
   best score. An empty result keeps the previous step's mask. For a decoder with logits
   (SAM's, whose prompt encoder reads corners as pixel indices: it adds 0.5) the box ends at
   the mask's last pixel (inclusive), as PerSAM's reference code and SAM's own
   ``batched_mask_to_box`` give it; a decoder without (GrabCut's rectangle) gets the
   exclusive end.

Mode ``full`` (the default, config ``cascade``) runs all three steps for every
request. Mode ``adaptive`` skips refinement 2 for a tracked request (one with a
``track_box``) whose refined mask agrees with its track: the tight box of the
refinement-1 mask has box IoU ≥ ``ADAPTIVE_BOX_IOU`` with the track's box. That
box is what refinement 2 would prompt with, so where it already matches the track
the third call mostly repeats the second. Untracked requests always get all three.

``run_cascade(..., refine=False)`` stops after the first decode (and refinement 1 when the
decoder gives logits). The identity path uses it for decoders without logits: there refinement
2 is GrabCut again inside the box of its own mask, which on the development scenes changed
neither the chosen candidate nor the masks' mIoU (0.713 against 0.716) while costing a second
GrabCut per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from perovss_ros.core.errors import InvalidInputError, PerovssError
from perovss_ros.core.matching import tight_box
from perovss_ros.core.protocols import MaskDecoder
from perovss_ros.core.types import BoxXYXY, DecodeOutput, Features, Guidance, Prompts

CASCADE_MODES = ("full", "adaptive")
ADAPTIVE_BOX_IOU = 0.85
"""Box IoU between a refined mask's tight box and its track's box above which adaptive skips refinement 2."""


@dataclass
class CascadeRequest:
    """One prompt set for the cascade.

    ``prompts``: first-decode points/labels (and optional box). ``guidance``: PerSAM guidance.
    ``scale_weights``: PerSAM-F weights ``[3]`` or None; ``positive`` is its ``(x, y)`` point.
    ``track_box``: set when the concept is tracked: its box in the previous frame (the
    tracker's box, XYXY pixels, not grown by the search margin); only the adaptive mode reads it.
    """

    prompts: Prompts
    guidance: Guidance | None = None
    scale_weights: torch.Tensor | None = None
    positive: tuple[float, float] | None = None
    track_box: BoxXYXY | None = None


@dataclass
class CascadeResult:
    """``masks`` ``K×H×W`` bool, ``scores`` ``K`` float32, ``logits`` ``K×h'×w'`` or None."""

    masks: np.ndarray
    scores: np.ndarray
    logits: torch.Tensor | None


def decoder_has_logits(decoder: MaskDecoder) -> bool:
    """Whether ``decoder`` returns low-res logits (its ``provides_logits`` flag, default True)."""
    return bool(getattr(decoder, "provides_logits", True))


def best_of(out: DecodeOutput) -> CascadeResult:
    """Per prompt set, the mask with the highest score of a ``K×M`` decode."""
    best = np.asarray(out.scores).argmax(axis=1)
    rows = np.arange(len(best))
    logits = out.logits[torch.from_numpy(rows), torch.from_numpy(best)] if out.logits is not None else None
    scores = np.asarray(out.scores)[rows, best]
    return CascadeResult(masks=out.masks[rows, best], scores=scores, logits=logits)


def decode_best(decoder: MaskDecoder, features: Features, rgb: np.ndarray, prompts: list[Prompts],
                guidance: list[Guidance | None] | None = None) -> CascadeResult:
    """``best_of(decoder.decode(...))``; through the decoder's own ``decode_best`` when it has one
    (the SAM decoder then upscales only the chosen mask of each set to image size)."""
    best = getattr(decoder, "decode_best", None)
    if best is None:
        return best_of(decoder.decode(features, rgb, prompts, guidance))
    out = best(features, rgb, prompts, guidance)
    return CascadeResult(masks=out.masks[:, 0], scores=np.asarray(out.scores)[:, 0],
                         logits=None if out.logits is None else out.logits[:, 0])


def _first_decode(
    decoder: MaskDecoder, features: Features, rgb: np.ndarray, requests: list[CascadeRequest]
) -> tuple[np.ndarray | None, torch.Tensor | None, np.ndarray]:
    """Step 1 -> (masks K×H×W or None for PerSAM-F rows, logits K×h'×w' or None, scores K)."""
    plain = [i for i, r in enumerate(requests) if r.scale_weights is None]
    tuned = [i for i, r in enumerate(requests) if r.scale_weights is not None]
    h, w = rgb.shape[:2]
    masks = np.zeros((len(requests), h, w), bool)
    scores = np.zeros(len(requests), np.float32)
    logits: torch.Tensor | None = None
    if plain:
        out = decoder.decode(
            features, rgb, [replace(requests[i].prompts, multimask=False, mask_logits=None) for i in plain],
            [requests[i].guidance for i in plain],
        )
        masks[plain] = out.masks[:, 0]
        scores[plain] = np.asarray(out.scores)[:, 0]
        if out.logits is not None:
            logits = torch.zeros((len(requests), *out.logits.shape[-2:]), dtype=out.logits.dtype)
            logits[plain] = out.logits[:, 0]
    if tuned:
        try:
            from perovss_ros.core.persam_f import combine_logits
        except ImportError as exc:
            raise PerovssError(f"PerSAM-F concepts need perovss_ros.core.persam_f ({exc})") from exc
        prompts = [
            Prompts(points=np.asarray([requests[i].positive], np.float32), labels=np.ones(1, np.int64),
                    multimask=True)
            for i in tuned
        ]
        out = decoder.decode(features, rgb, prompts, None)
        if out.logits is None:
            raise PerovssError("PerSAM-F needs a decoder with logits (the sam backend)")
        combined = torch.stack([
            combine_logits(out.logits[j], requests[i].scale_weights) for j, i in enumerate(tuned)
        ])
        if logits is None:
            logits = torch.zeros((len(requests), *combined.shape[-2:]), dtype=combined.dtype)
        logits[tuned] = combined.to(logits.dtype)
        best = best_of(out)
        masks[tuned] = best.masks
        scores[tuned] = best.scores
    return masks, logits, scores


def box_iou(a: BoxXYXY, b: BoxXYXY) -> float:
    """Intersection over union of two XYXY boxes in pixels (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def agrees_with_track(mask: np.ndarray, track_box: BoxXYXY | None) -> bool:
    """Whether an ``H×W`` bool mask's tight box matches ``track_box`` (box IoU ≥ ``ADAPTIVE_BOX_IOU``)."""
    if track_box is None:
        return False
    box = tight_box(mask)
    return box is not None and box_iou(box, track_box) >= ADAPTIVE_BOX_IOU


def run_cascade(
    decoder: MaskDecoder, features: Features, rgb: np.ndarray, requests: list[CascadeRequest], mode: str = "full",
    refine: bool = True,
) -> CascadeResult:
    """Run the cascade for K requests, each step one batched decode; ``mode`` ``full`` or ``adaptive``;
    ``refine`` False skips refinement 2 (see the module docstring)."""
    if mode not in CASCADE_MODES:
        raise InvalidInputError(f"cascade mode {mode!r} unknown; use one of: {', '.join(CASCADE_MODES)}")
    if not requests:
        h, w = rgb.shape[:2]
        return CascadeResult(np.zeros((0, h, w), bool), np.zeros(0, np.float32), None)
    masks, logits, scores = _first_decode(decoder, features, rgb, requests)
    current = CascadeResult(masks=masks, scores=scores, logits=logits)

    def points_of(r: CascadeRequest) -> Prompts:
        if r.scale_weights is not None:
            return Prompts(points=np.asarray([r.positive], np.float32), labels=np.ones(1, np.int64))
        return r.prompts

    if logits is not None:
        refine1 = [
            replace(points_of(r), mask_logits=logits[k:k + 1], multimask=True) for k, r in enumerate(requests)
        ]
        current = decode_best(decoder, features, rgb, refine1)

    rows = [k for k, r in enumerate(requests)
            if refine and (mode == "full" or not agrees_with_track(current.masks[k], r.track_box))]
    out = CascadeResult(masks=current.masks.copy(), scores=np.array(current.scores, copy=True),
                        logits=None if current.logits is None else current.logits.clone())
    if not rows:
        return out
    refine2 = []
    inclusive = decoder_has_logits(decoder)
    for k in rows:
        box = tight_box(current.masks[k], inclusive=inclusive)
        prompt = points_of(requests[k])
        mask_in = current.logits[k:k + 1] if current.logits is not None else None
        refine2.append(replace(prompt, box=box if box is not None else prompt.box, mask_logits=mask_in,
                               multimask=True))
    final = decode_best(decoder, features, rgb, refine2)
    for j, k in enumerate(rows):
        if not final.masks[j].any():
            continue  # an empty refinement keeps the previous step's mask
        out.masks[k] = final.masks[j]
        out.scores[k] = final.scores[j]
        if out.logits is not None and final.logits is not None:
            out.logits[k] = final.logits[j].to(out.logits.dtype)
    return out
