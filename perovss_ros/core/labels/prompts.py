"""Prompt ensembles: a label's text embedding is the normalised mean over several templates, cached."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels.pooling import l2_normalise
from perovss_ros.core.labels.protocols import TextEncoder

TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a {}.",
)
"""Prompt templates (a subset of CLIP's ImageNet ensemble); ``{}`` is the label."""

NULL_TEXTS: tuple[str, ...] = (
    "a photo of an object.",
    "a photo of a thing.",
    "a photo of something.",
    "a photo of the background.",
)
"""Texts of the "none of these" class: what a segment is when no vocabulary word fits it."""

MAX_LABEL_CHARS = 64


def check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """``labels`` as a tuple of stripped, non-empty, distinct words, or InvalidInputError."""
    if isinstance(labels, str):
        raise InvalidInputError("labels must be a list of words, not one string")
    out = tuple(str(label).strip() for label in labels)
    for label in out:
        if not label or len(label) > MAX_LABEL_CHARS or "{" in label or "}" in label:
            raise InvalidInputError(f"label {label!r} must be 1..{MAX_LABEL_CHARS} characters without braces")
    if len(set(out)) != len(out):
        raise InvalidInputError(f"labels must be distinct, got {list(out)}")
    return out


class TextEmbeddingCache:
    """Ensemble text embeddings of labels, each label encoded once per encoder.

    ``embed(labels)`` encodes only the labels not seen before (all their template
    texts in one ``encode_text`` call) and returns ``N×D float32``, row ``i`` the
    L2-normalised mean of label ``i``'s per-template embeddings. Thread-safe: the
    node's service thread may change the vocabulary while frames are labelled.
    """

    def __init__(self, encoder: TextEncoder, templates: Sequence[str] = TEMPLATES) -> None:
        if not templates or any("{}" not in t for t in templates):
            raise InvalidInputError(f"every prompt template needs one '{{}}' for the label, got {list(templates)}")
        self.encoder = encoder
        self.templates = tuple(templates)
        self._by_label: dict[str, np.ndarray] = {}
        self._by_texts: dict[tuple[str, ...], np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, labels: Sequence[str]) -> np.ndarray:
        """``N×D float32`` ensemble embeddings of ``N`` labels (``0×D`` for none)."""
        labels = check_labels(labels)
        with self._lock:
            missing = [label for label in dict.fromkeys(labels) if label not in self._by_label]
            if missing:
                texts = [t.format(label) for label in missing for t in self.templates]
                per_text = self.encoder.encode_text(texts).reshape(len(missing), len(self.templates), -1)
                for label, rows in zip(missing, l2_normalise(per_text.mean(axis=1)), strict=True):
                    self._by_label[label] = rows
            if not labels:
                return np.zeros((0, self.encoder.embed_dim), np.float32)
            return np.stack([self._by_label[label] for label in labels])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``M×D float32``: each of ``M`` whole texts embedded as it is (no templates), cached per tuple."""
        key = tuple(texts)
        with self._lock:
            if key not in self._by_texts:
                self._by_texts[key] = (self.encoder.encode_text(list(key)) if key
                                       else np.zeros((0, self.encoder.embed_dim), np.float32))
            return self._by_texts[key]
