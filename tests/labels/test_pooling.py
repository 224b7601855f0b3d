"""Coverage-weighted mask pooling (USE) on hand-made grids."""

from __future__ import annotations

import numpy as np
import pytest

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.labels.pooling import axis_coverage, coverage_weights, pool_tokens


def test_uneven_axis_splits_the_middle_pixel() -> None:
    # 3 pixels over 2 cells: each cell spans 1.5 pixels; the middle pixel is half in each.
    expected = np.array([[1 / 1.5, 0.5 / 1.5, 0.0], [0.0, 0.5 / 1.5, 1 / 1.5]])
    np.testing.assert_allclose(axis_coverage(3, 2), expected, atol=1e-6)


def test_weights_are_the_covered_share_of_each_patch() -> None:
    # 4×4 image, 2×2 grid of 2×2-pixel patches.
    mask = np.zeros((1, 4, 4), bool)
    mask[0, 0:2, 0:2] = True      # all of patch (0, 0)
    mask[0, 0:2, 2] = True        # half of patch (0, 1)
    mask[0, 2, 0] = True          # a quarter of patch (1, 0)
    weights = coverage_weights(mask, (2, 2))
    np.testing.assert_allclose(weights[0], [[1.0, 0.5], [0.25, 0.0]], atol=1e-6)


def test_pooled_vector_by_hand() -> None:
    tokens = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                       [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]], np.float32)
    mask = np.zeros((4, 4), bool)
    mask[0:2, 0:2] = True
    mask[0:2, 2] = True
    mask[2, 0] = True
    second = np.zeros((4, 4), bool)
    second[2:4, 2:4] = True       # exactly patch (1, 1)
    pooled = pool_tokens(tokens, coverage_weights(np.stack([mask, second]), (2, 2)))
    # (1·t00 + 0.5·t01 + 0.25·t10) / 1.75 = (1, 0.5, 0.25) / 1.75, then unit length.
    expected = np.array([1.0, 0.5, 0.25]) / np.sqrt(1.0 + 0.25 + 0.0625)
    np.testing.assert_allclose(pooled[0], expected, atol=1e-6)
    np.testing.assert_allclose(pooled[1], np.ones(3) / np.sqrt(3.0), atol=1e-6)


def test_non_divisible_image_uses_fractional_coverage() -> None:
    # 3×3 image over a 2×2 grid; the centre pixel alone covers (0.5/1.5)² of each patch.
    mask = np.zeros((1, 3, 3), bool)
    mask[0, 1, 1] = True
    np.testing.assert_allclose(coverage_weights(mask, (2, 2))[0], np.full((2, 2), (1 / 3) ** 2), atol=1e-6)


def test_a_mask_covering_nothing_is_refused() -> None:
    tokens = np.ones((2, 2, 3), np.float32)
    with pytest.raises(InvalidInputError, match="covers no pixel"):
        pool_tokens(tokens, np.zeros((1, 2, 2), np.float32))
