"""A taught concept's personal embedding, and its say in "mine or just another mug" (personalised OVSS).

At teach time (``PersonalEmbedding.build``) the concept's embedding starts from its
category's text embedding ``t`` with its masked visual embedding ``v`` (the mean
over shots of the region encoder's unit embeddings) injected:
``p = normalise(t + VISUAL_WEIGHT · normalise(v))``. The negatives are region
embeddings of same-category things in the teach frames that are not the concept
(look-alikes), ``N×D``.

On a label frame each personal segment's region embedding ``r`` is scored
(``probability``): ``sigmoid(logit_scale · (cos(r, p) − max(cos(r, t), cos(r, n_j))))``,
the CLIP's two-way odds of "this concept" against the best generic rival, the
category word or a known look-alike (0.5: a tie). ``keep_personal`` fuses that with
the identity's margin (``FrameDecision.margins``: 1 a perfect region match, 0 at the
acceptance limit) into ``IDENTITY_WEIGHT · margin + (1 − IDENTITY_WEIGHT) · (2·prob − 1)``;
a segment whose fused evidence is below 0 is not the concept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels.pooling import l2_normalise

# How much of the concept's own look goes into its embedding, against the category word's 1: equal
# parts, so the embedding stays nearer its category than any single view (an odd shot does not make
# it a different kind of thing) while still pointing at this object's colour and pattern.
VISUAL_WEIGHT = 1.0
# The identity's share of the fused evidence. Both terms are 0 at their own boundary (margin 0 at the
# region cues' acceptance limit, 2·prob − 1 at a CLIP tie) and at most 1, so equal weight lets either
# overrule the other only when it is clearly surer: a barely passing identity (margin 0.1) yields to a
# CLIP that prefers a look-alike or the plain category (prob < 0.45), a clear one (margin 0.8) only
# to a CLIP that is nearly certain (prob < 0.1). The identity sees the object at full resolution with
# cues fitted to its shots; the CLIP sees a small crop, so it should not win a close call alone.
IDENTITY_WEIGHT = 0.5


@dataclass(frozen=True)
class PersonalEmbedding:
    """A concept's personal embedding (``D`` unit), its category's text embedding and its negatives.

    ``embedding`` and ``category_text`` are ``D float32`` unit vectors, ``negatives`` ``N×D float32``
    unit rows (N may be 0), ``logit_scale`` the CLIP's temperature.
    """

    category: str
    embedding: np.ndarray
    category_text: np.ndarray
    negatives: np.ndarray
    logit_scale: float

    @classmethod
    def build(cls, category: str, category_text: np.ndarray, shots: np.ndarray, negatives: np.ndarray,
              logit_scale: float, visual_weight: float = VISUAL_WEIGHT) -> PersonalEmbedding:
        """From the category's ``D`` text embedding, the ``S×D`` masked-shot embeddings (S ≥ 1) and ``N×D``
        look-alike embeddings; InvalidInputError for mismatched shapes."""
        text = l2_normalise(np.asarray(category_text, np.float32).reshape(1, -1))[0]
        shots = np.asarray(shots, np.float32)
        dim = text.shape[0]
        if shots.ndim != 2 or len(shots) == 0 or shots.shape[1] != dim:
            raise InvalidInputError(f"personal embedding needs S×{dim} shot embeddings (S ≥ 1), got {shots.shape}")
        negatives = np.asarray(negatives, np.float32).reshape(-1, dim)
        if not np.isfinite(logit_scale) or logit_scale <= 0:
            raise InvalidInputError(f"logit_scale must be positive, got {logit_scale}")
        visual = l2_normalise(shots.mean(axis=0, keepdims=True))[0]
        embedding = l2_normalise((text + visual_weight * visual)[None])[0]
        return cls(category, embedding, text, l2_normalise(negatives) if len(negatives) else negatives,
                   float(logit_scale))

    def probability(self, regions: np.ndarray) -> np.ndarray:
        """``K float32`` in (0, 1): how much more each of ``K×D`` unit region embeddings is this concept
        than its best generic rival (the category word or a negative); 0.5 a tie."""
        regions = np.asarray(regions, np.float32).reshape(-1, self.embedding.shape[0])
        mine = regions @ self.embedding
        rival = regions @ self.category_text
        if len(self.negatives):
            rival = np.maximum(rival, (regions @ self.negatives.T).max(axis=1))
        logits = np.clip(self.logit_scale * (mine - rival), -50.0, 50.0)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def fused_evidence(probability: float, margin: float | None) -> float:
    """``IDENTITY_WEIGHT · margin + (1 − IDENTITY_WEIGHT) · (2·probability − 1)``; below 0: not the concept.

    ``margin`` None (no identity model, e.g. identity off) counts as 0: the CLIP decides alone.
    """
    identity = 0.0 if margin is None else float(margin)
    return IDENTITY_WEIGHT * identity + (1.0 - IDENTITY_WEIGHT) * (2.0 * float(probability) - 1.0)


def keep_personal(probability: float, margin: float | None) -> bool:
    """Whether a personal segment stays the concept (``fused_evidence`` ≥ 0)."""
    return fused_evidence(probability, margin) >= 0.0
