"""Prompt ensemble and the per-vocabulary text-embedding cache, on a tiny random open_clip model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels import OpenClipEncoder
from perovss_ros.core.labels.prompts import TEMPLATES, TextEmbeddingCache
from tests.labels.tiny import tiny_encoder


class CountingEncoder(OpenClipEncoder):
    """The real encoder, recording every batch of texts it is asked to encode."""

    def __init__(self, *args, **kwargs) -> None:
        self.batches: list[list[str]] = []
        super().__init__(*args, **kwargs)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return super().encode_text(texts)


def counting_encoder() -> CountingEncoder:
    base = tiny_encoder()
    encoder = CountingEncoder(base.model, base.tokenizer, base.model_id)
    encoder.batches.clear()  # construction measures the embedding width with one text
    return encoder


def test_same_vocabulary_is_not_encoded_again() -> None:
    encoder = counting_encoder()
    cache = TextEmbeddingCache(encoder)
    first = cache.embed(["mug", "ball"])
    assert len(encoder.batches) == 1
    assert len(encoder.batches[0]) == 2 * len(TEMPLATES)
    second = cache.embed(["mug", "ball"])
    assert len(encoder.batches) == 1
    np.testing.assert_array_equal(first, second)
    reordered = cache.embed(["ball", "mug"])
    assert len(encoder.batches) == 1
    np.testing.assert_array_equal(reordered, first[::-1])


def test_a_new_word_encodes_only_that_word() -> None:
    encoder = counting_encoder()
    cache = TextEmbeddingCache(encoder)
    cache.embed(["mug", "ball"])
    cache.embed(["mug", "box"])
    assert len(encoder.batches) == 2
    assert encoder.batches[1] == [t.format("box") for t in TEMPLATES]


def test_ensemble_is_the_normalised_mean_of_the_template_embeddings() -> None:
    encoder = tiny_encoder()
    got = TextEmbeddingCache(encoder).embed(["red mug"])[0]
    per_template = []
    with torch.no_grad():
        for template in TEMPLATES:
            vec = encoder.model.encode_text(encoder.tokenizer([template.format("red mug")]))[0]
            per_template.append((vec / vec.norm()).numpy())
    mean = np.mean(per_template, axis=0)
    expected = mean / np.linalg.norm(mean)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.dtype == np.float32
    # The ensemble differs from any single template (the templates are not all the same text).
    assert min(float(np.dot(got, t)) for t in per_template) < 0.9999


@pytest.mark.parametrize("labels", [["mug", "mug"], ["mug", ""], ["a {} b"], "mug", ["x" * 65]])
def test_bad_vocabularies_are_refused(labels) -> None:
    with pytest.raises(InvalidInputError):
        TextEmbeddingCache(tiny_encoder()).embed(labels)


def test_templates_need_a_slot() -> None:
    with pytest.raises(InvalidInputError, match="template"):
        TextEmbeddingCache(tiny_encoder(), templates=["a photo."])
