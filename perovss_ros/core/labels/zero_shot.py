"""Zero-shot scores of region embeddings against a vocabulary, with a "none of these" class.

Rule (documented in docs/ARCHITECTURE.md, "Labels"): with ``c_i`` the cosine of a
region to label ``i``'s ensemble text embedding and ``c_0`` its highest cosine to
the null texts (``prompts.NULL_TEXTS``: "an object", "a thing", "something", "the
background"), the probabilities are ``softmax(logit_scale · [c_1..c_N, c_0])``.
The region gets its nearest word only when that word's probability is at least
``min_probability``; otherwise it stays unlabelled. The null class is what makes
the threshold calibrated: it is scored by the same model, so it moves with that
model's cosine range and temperature, and an unknown thing, which resembles the
generic "object" prompts about as much as any word, loses its nearest word instead
of taking it. With ``min_probability ≥ 0.5`` the word must also beat every other
word and the null class together, so a region halfway between two words stays
unlabelled too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels.pooling import l2_normalise

DEFAULT_MIN_PROBABILITY = 0.5


@dataclass(frozen=True)
class RegionLabel:
    """The zero-shot answer for one region.

    ``label`` is the vocabulary word or None ("none of these"); ``score`` the
    probability of the nearest word (0..1, whether or not it was accepted);
    ``nearest`` that word (None for an empty vocabulary) and ``cosine`` its cosine.
    """

    label: str | None
    score: float
    nearest: str | None
    cosine: float


class ZeroShotClassifier:
    """Scores ``K×D`` L2-normalised region embeddings against ``N`` label embeddings plus the null class."""

    def __init__(self, labels: Sequence[str], label_embeddings: np.ndarray, null_embeddings: np.ndarray,
                 logit_scale: float, min_probability: float = DEFAULT_MIN_PROBABILITY) -> None:
        """``label_embeddings`` ``N×D`` and ``null_embeddings`` ``M×D`` (M may be 0: no null class), unit rows."""
        self.labels = tuple(labels)
        self.label_embeddings = np.asarray(label_embeddings, np.float32)
        self.null_embeddings = np.asarray(null_embeddings, np.float32)
        if self.label_embeddings.ndim != 2 or self.label_embeddings.shape[0] != len(self.labels):
            raise InvalidInputError(f"{len(self.labels)} labels need N×D embeddings, got {self.label_embeddings.shape}")
        if self.null_embeddings.ndim != 2 or self.null_embeddings.shape[1] != self.label_embeddings.shape[1]:
            raise InvalidInputError(f"null embeddings must be M×{self.label_embeddings.shape[1]}, "
                                    f"got {self.null_embeddings.shape}")
        if not 0.0 < min_probability <= 1.0:
            raise InvalidInputError(f"min_probability must be in (0, 1], got {min_probability}")
        if not np.isfinite(logit_scale) or logit_scale <= 0:
            raise InvalidInputError(f"logit_scale must be positive, got {logit_scale}")
        self.logit_scale = float(logit_scale)
        self.min_probability = float(min_probability)

    @property
    def embed_dim(self) -> int:
        """``D``."""
        return int(self.label_embeddings.shape[1])

    def cosines(self, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(K×N cosines to the labels, K cosines to the null class or None without one)``."""
        regions = np.asarray(regions, np.float32)
        if regions.ndim != 2 or regions.shape[1] != self.embed_dim:
            raise InvalidInputError(f"region embeddings must be K×{self.embed_dim}, got {regions.shape}")
        to_labels = regions @ self.label_embeddings.T
        to_null = (regions @ self.null_embeddings.T).max(axis=1) if len(self.null_embeddings) else None
        return to_labels, to_null

    def probabilities(self, regions: np.ndarray) -> np.ndarray:
        """``K×(N+1) float32``: softmax over the labels and, in the last column, the null class (0 without one)."""
        to_labels, to_null = self.cosines(regions)
        null = to_null[:, None] if to_null is not None else np.full((len(to_labels), 1), -np.inf, np.float32)
        logits = self.logit_scale * np.concatenate([to_labels, null], axis=1).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return (odds / odds.sum(axis=1, keepdims=True)).astype(np.float32)

    def classify(self, regions: np.ndarray) -> list[RegionLabel]:
        """One RegionLabel per row of ``K×D`` region embeddings (all None for an empty vocabulary)."""
        if not self.labels:
            self.cosines(regions)  # still validates the shape
            return [RegionLabel(None, 0.0, None, 0.0) for _ in range(len(regions))]
        to_labels, _ = self.cosines(regions)
        probs = self.probabilities(regions)
        out = []
        for k, best in enumerate(np.argmax(to_labels, axis=1)):
            prob = float(probs[k, best])
            word = self.labels[best]
            out.append(RegionLabel(word if prob >= self.min_probability else None, prob, word,
                                   float(to_labels[k, best])))
        return out

    def infer_category(self, shot_embeddings: np.ndarray) -> RegionLabel:
        """The category of a taught concept from its ``S×D`` masked-shot embeddings.

        The shots are averaged (then L2-normalised) so that one odd view does not
        decide; the mean is classified like any region, null class included, so a
        concept unlike every word gets ``label`` None.
        """
        shots = np.asarray(shot_embeddings, np.float32)
        if shots.ndim != 2 or len(shots) == 0:
            raise InvalidInputError(f"category inference needs S×D shot embeddings (S ≥ 1), got {shots.shape}")
        return self.classify(l2_normalise(shots.mean(axis=0, keepdims=True)))[0]
