"""The "none of these" rule and category inference on hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels.zero_shot import ZeroShotClassifier

E = np.eye(4, dtype=np.float32)
LABELS = ("mug", "ball")
SCALE = 10.0


def classifier(with_null: bool = True, min_probability: float = 0.5) -> ZeroShotClassifier:
    null = E[2:3] if with_null else np.zeros((0, 4), np.float32)
    return ZeroShotClassifier(LABELS, E[:2], null, SCALE, min_probability)


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_a_clear_region_takes_its_word() -> None:
    (got,) = classifier().classify(E[0:1])
    expected = np.exp(10) / (np.exp(10) + 1 + 1)
    assert got.label == "mug" and got.nearest == "mug"
    assert got.score == pytest.approx(expected, rel=1e-5)
    assert got.cosine == pytest.approx(1.0)


def test_an_object_like_region_stays_unlabelled() -> None:
    (got,) = classifier().classify(E[2:3])
    assert got.label is None
    assert got.nearest in LABELS
    assert got.score == pytest.approx(1 / (2 + np.exp(10)), rel=1e-5)


def test_a_region_halfway_between_two_words_stays_unlabelled() -> None:
    (got,) = classifier().classify(unit(1, 1, 0, 0)[None])
    c = np.sqrt(0.5) * SCALE
    assert got.score == pytest.approx(np.exp(c) / (2 * np.exp(c) + 1), rel=1e-5)
    assert got.label is None


def test_the_null_class_is_what_rejects_the_nearest_word() -> None:
    # cos(mug) 0.6, cos(ball) 0, cos(null) 0.8.
    region = np.array([[0.6, 0.0, 0.8, 0.0]], np.float32)
    (with_null,) = classifier().classify(region)
    (without,) = classifier(with_null=False).classify(region)
    assert with_null.score == pytest.approx(np.exp(6) / (np.exp(6) + 1 + np.exp(8)), rel=1e-5)
    assert with_null.label is None
    assert without.score == pytest.approx(np.exp(6) / (np.exp(6) + 1), rel=1e-5)
    assert without.label == "mug"


def test_probabilities_sum_to_one_with_the_null_column_last() -> None:
    probs = classifier().probabilities(np.stack([E[0], E[2], unit(1, 1, 1, 1)]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert probs[1, 2] > 0.99
    np.testing.assert_allclose(probs[2], [1 / 3, 1 / 3, 1 / 3], atol=1e-6)


def test_empty_vocabulary_labels_nothing() -> None:
    empty = ZeroShotClassifier((), np.zeros((0, 4), np.float32), E[2:3], SCALE)
    assert [r.label for r in empty.classify(E[:2])] == [None, None]


def test_bad_shapes_and_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        classifier().classify(np.ones((1, 3), np.float32))
    with pytest.raises(InvalidInputError):
        classifier(min_probability=0.0)
    with pytest.raises(InvalidInputError):
        ZeroShotClassifier(LABELS, E[:3], E[2:3], SCALE)


def test_category_from_shots_follows_the_mean_view() -> None:
    # Two views near "mug", one odd view nearer "ball": the mean still says mug.
    shots = np.stack([unit(1, 0.2, 0, 0), unit(1, 0, 0, 0.3), unit(0.4, 0.6, 0, 0)])
    got = classifier().infer_category(shots)
    mean = shots.mean(axis=0)
    mean /= np.linalg.norm(mean)
    assert got.label == "mug"
    assert got.cosine == pytest.approx(float(mean[0]), rel=1e-5)


def test_a_concept_unlike_every_word_gets_no_category() -> None:
    shots = np.stack([unit(0.1, 0, 1, 0), unit(0, 0.1, 1, 0.2)])
    got = classifier().infer_category(shots)
    assert got.label is None


def test_category_needs_shots() -> None:
    with pytest.raises(InvalidInputError):
        classifier().infer_category(np.zeros((0, 4), np.float32))
