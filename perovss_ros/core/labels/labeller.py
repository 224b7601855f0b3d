"""RegionLabeller: names segments with words of a vocabulary, or leaves them unlabelled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels.prompts import NULL_TEXTS, TEMPLATES, TextEmbeddingCache, check_labels
from perovss_ros.core.labels.protocols import RegionEncoder, TextEncoder
from perovss_ros.core.labels.zero_shot import DEFAULT_MIN_PROBABILITY, RegionLabel, ZeroShotClassifier


class ClipEncoder(TextEncoder, RegionEncoder, Protocol):
    """Both halves of a CLIP: text and regions in one space (OpenClipEncoder is one)."""


class RegionLabeller:
    """Zero-shot labels for segments against a vocabulary that can change at any time.

    Per frame: ``label(rgb, masks)``; at teach time: ``infer_category(images, masks)``.
    ``set_vocabulary`` encodes new words at once (the caller pays, not the next
    frame) and swaps the classifier in one assignment, so a frame being labelled on
    another thread sees either the old or the new vocabulary, never a mix.
    """

    def __init__(self, encoder: ClipEncoder, vocabulary: Sequence[str] = (), templates: Sequence[str] = TEMPLATES,
                 null_texts: Sequence[str] = NULL_TEXTS, min_probability: float = DEFAULT_MIN_PROBABILITY) -> None:
        """``null_texts`` empty turns the "none of these" class off (then only ``min_probability`` rejects)."""
        self.encoder = encoder
        self.texts = TextEmbeddingCache(encoder, templates)
        self._null = self.texts.embed_texts(tuple(null_texts))
        self.min_probability = float(min_probability)
        self._classifier = self._make_classifier(check_labels(vocabulary))

    @property
    def model_id(self) -> str:
        """The encoder's model id."""
        return self.encoder.model_id

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The current vocabulary words."""
        return self._classifier.labels

    @property
    def classifier(self) -> ZeroShotClassifier:
        """The current classifier (an immutable snapshot: keep it for a whole frame)."""
        return self._classifier

    def set_vocabulary(self, labels: Sequence[str]) -> None:
        """Replace the vocabulary; raises InvalidInputError for empty, brace-holding or repeated words."""
        self._classifier = self._make_classifier(check_labels(labels))

    def text_embeddings(self, labels: Sequence[str]) -> np.ndarray:
        """``N×D float32`` prompt-ensemble embeddings of ``labels`` (cached)."""
        return self.texts.embed(labels)

    def region_embeddings(self, rgb: np.ndarray, masks: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """``K×D float32`` unit embeddings of the ``K×H×W bool`` masks of ``H×W×3 uint8 RGB`` ``rgb``."""
        return self.encoder.encode_regions(rgb, masks)

    def label(self, rgb: np.ndarray, masks: np.ndarray | Sequence[np.ndarray]) -> list[RegionLabel]:
        """One RegionLabel per mask (``label`` None: none of the words fits), in mask order."""
        classifier = self._classifier
        return classifier.classify(self.region_embeddings(rgb, masks))

    def infer_category(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> RegionLabel:
        """The vocabulary word for a taught concept from its shots (``H×W×3 uint8 RGB`` images, ``H×W bool`` masks).

        ``label`` None when no word fits (the teach reply then says so).
        """
        if len(images) != len(masks) or not images:
            raise InvalidInputError(f"category inference needs one mask per image, got {len(images)} images "
                                    f"and {len(masks)} masks")
        classifier = self._classifier
        shots = np.concatenate([self.region_embeddings(rgb, [mask]) for rgb, mask in zip(images, masks, strict=True)])
        return classifier.infer_category(shots)

    def _make_classifier(self, labels: tuple[str, ...]) -> ZeroShotClassifier:
        return ZeroShotClassifier(labels, self.texts.embed(labels), self._null, self.encoder.logit_scale,
                                  self.min_probability)
